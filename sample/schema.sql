-- Sample call-center database for unscharf: two campaigns and shared reference data.
-- Loaded by `unscharf demo` and by the test harness into a throwaway cluster.

CREATE SCHEMA stadtwerke;
CREATE SCHEMA zeitung;

CREATE TABLE public.postcodes (
    postcode  text PRIMARY KEY,
    city      text NOT NULL,
    district  text
);

CREATE TABLE stadtwerke.customers (
    customer_no integer PRIMARY KEY,
    name        text NOT NULL,
    street      text,
    postcode    text REFERENCES public.postcodes,
    city        text,
    phone       text,
    email       text,
    iban        text,
    birth_date  date,
    notes       text
);

CREATE TABLE stadtwerke.meter_readings (
    reading_id  serial PRIMARY KEY,
    customer_no integer NOT NULL REFERENCES stadtwerke.customers,
    read_on     date NOT NULL,
    cubic_m     numeric(10,2) NOT NULL,
    estimated   boolean NOT NULL DEFAULT false
);

CREATE TABLE stadtwerke.tickets (
    ticket_id   serial PRIMARY KEY,
    customer_no integer REFERENCES stadtwerke.customers,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    agent       text NOT NULL DEFAULT current_user,
    subject     text NOT NULL,
    note        text,
    status      text NOT NULL DEFAULT 'open'
);

CREATE TABLE zeitung.leads (
    lead_id     serial PRIMARY KEY,
    name        text NOT NULL,
    phone       text,
    email       text,
    postcode    text REFERENCES public.postcodes,
    contact_ok_until date
);

CREATE TABLE zeitung.subscriptions (
    subscription_id serial PRIMARY KEY,
    lead_id     integer NOT NULL REFERENCES zeitung.leads,
    product     text NOT NULL,
    starts_on   date NOT NULL,
    monthly_eur numeric(6,2) NOT NULL,
    agent       text NOT NULL DEFAULT current_user,
    created_at  timestamptz NOT NULL DEFAULT now()
);
