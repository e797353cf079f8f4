// node-postgres (pg) and pg-cursor; copied next to node_modules by run.sh.
const fs = require('fs');
const { Client } = require('pg');
const Cursor = require('pg-cursor');

const C = 'node-pg';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function step(what) {
  await sleep(30);
  fs.appendFileSync(process.env.MARKERS, `${(Date.now() / 1000).toFixed(6)}\t${C}\t${what}\n`);
  await sleep(30);
}

(async () => {
  await step('connect');
  const client = new Client({ host: '127.0.0.1', port: Number(process.env.PORT || 55432),
    user: 'agent_wasser', password: 'wasser', database: 'crm', application_name: C });
  await client.connect();

  await step('query without parameters');
  await client.query('SELECT customer_no, name FROM stadtwerke.customers ORDER BY customer_no');
  await step('query with $1 parameters');
  await client.query('SELECT customer_no, name FROM stadtwerke.customers WHERE phone = $1', ['+49 30 1234567']);
  await client.query('SELECT * FROM stadtwerke.meter_readings WHERE customer_no = $1 AND read_on >= $2 AND cubic_m > $3 AND estimated = $4',
    [1001, '2026-01-01', '50.00', false]);
  await step('rowMode array');
  await client.query({ text: 'SELECT postcode, city FROM public.postcodes WHERE city = $1', values: ['Berlin'], rowMode: 'array' });

  await step('named prepared statement');
  const named = { name: 'customer-by-no', text: 'SELECT name, city FROM stadtwerke.customers WHERE customer_no = $1' };
  await client.query({ ...named, values: [1001] });
  await client.query({ ...named, values: [1002] });

  await step('transaction commit');
  await client.query('BEGIN');
  await client.query('INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES ($1, $2, $3) RETURNING ticket_id',
    [1003, 'Rückruf', 'node-pg']);
  await client.query('COMMIT');
  await step('transaction rollback');
  await client.query('BEGIN');
  await client.query('UPDATE stadtwerke.tickets SET status = $1 WHERE note = $2', ['closed', 'node-pg']);
  await client.query('ROLLBACK');

  await step('pg-cursor');
  await client.query('BEGIN');
  const cursor = client.query(new Cursor('SELECT reading_id, read_on, cubic_m FROM stadtwerke.meter_readings WHERE customer_no > $1', [1000]));
  await cursor.read(2);
  await cursor.read(2);
  await cursor.close();
  await client.query('COMMIT');

  await step('close');
  await client.end();
})().catch((e) => { console.error(e); process.exit(1); });
