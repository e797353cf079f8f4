-- Sample rows. Every value here is invented; tests assert that the protected ones
-- (phone, email, IBAN, birth date, notes) never reach a client unmasked.

INSERT INTO public.postcodes VALUES
  ('10115', 'Berlin', 'Mitte'),
  ('12043', 'Berlin', 'Neukölln'),
  ('20095', 'Hamburg', 'Altstadt'),
  ('50667', 'Köln', 'Altstadt-Nord'),
  ('80331', 'München', 'Altstadt-Lehel');

INSERT INTO stadtwerke.customers VALUES
  (1001, 'Anna Schmidt',    'Lindenstraße 5',     '10115', 'Berlin',  '+49 30 1234567',  'anna.schmidt@example.org',  'DE89 3704 0044 0532 0130 00', '1984-07-02', 'Hörgerät, bitte laut sprechen'),
  (1002, 'Bernd Müller',    'Hauptstraße 12',     '12043', 'Berlin',  '+49 30 7654321',  'bernd.mueller@example.net', 'DE12 5001 0517 0648 4898 90', '1961-11-23', 'Zahlt immer spät'),
  (1003, 'Cem Yılmaz',      'Ottenser Markt 3',   '20095', 'Hamburg', '+49 40 5550123',  'cem.yilmaz@example.com',    'DE44 2005 0550 1234 5678 90', '1990-02-14', 'Ratenzahlung vereinbart'),
  (1004, 'Doris Becker',    'Domplatz 1',         '50667', 'Köln',    '+49 221 9988776', 'doris.becker@example.org',  'DE02 3705 0198 0001 8023 45', '1947-05-30', NULL),
  (1005, 'Emil Wagner',     'Marienplatz 8',      '80331', 'München', NULL,              NULL,                        NULL,                          NULL,         NULL);

INSERT INTO stadtwerke.meter_readings (customer_no, read_on, cubic_m, estimated) VALUES
  (1001, '2026-01-15', 112.50, false),
  (1001, '2026-07-15', 131.20, false),
  (1002, '2026-01-15',  88.00, true),
  (1003, '2026-01-16', 203.75, false),
  (1004, '2026-01-16',  54.10, false);

INSERT INTO stadtwerke.tickets (customer_no, agent, subject, note, status) VALUES
  (1001, 'agent_wasser', 'Abschlag zu hoch', 'Kundin bittet um Prüfung des Abschlags', 'open'),
  (1002, 'agent_wasser', 'Zählerwechsel',    'Termin vereinbart',                      'closed');

INSERT INTO zeitung.leads (name, phone, email, postcode, contact_ok_until) VALUES
  ('Frieda Hoffmann', '+49 30 2223334',  'frieda.h@example.com',    '10115', '2027-01-31'),
  ('Gustav Klein',    '+49 40 8887776',  'g.klein@example.net',     '20095', '2027-06-30'),
  ('Hanna Wolf',      '+49 89 4445556',  'hanna.wolf@example.org',  '80331', '2026-12-31');

INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur, agent) VALUES
  (1, 'Digital Plus', '2026-10-01', 14.99, 'agent_zeitung'),
  (2, 'Wochenende',   '2026-11-01', 21.90, 'agent_zeitung');
