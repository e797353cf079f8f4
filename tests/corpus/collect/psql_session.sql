-- psql session replayed by run.sh (psql -X -f). Lines starting with \! only write a
-- step marker on the client side; nothing of them reaches the server.
\! "$MARK" psql '\d'
\d
\! "$MARK" psql '\dt'
\dt
\! "$MARK" psql '\dt stadtwerke.*'
\dt stadtwerke.*
\! "$MARK" psql '\d stadtwerke.customers'
\d stadtwerke.customers
\! "$MARK" psql '\d+ stadtwerke.customers'
\d+ stadtwerke.customers
\! "$MARK" psql '\dn'
\dn
\! "$MARK" psql '\df'
\df
\! "$MARK" psql '\dv'
\dv
\! "$MARK" psql '\l'
\l
\! "$MARK" psql '\du'
\du
\! "$MARK" psql '\conninfo'
\conninfo
\! "$MARK" psql 'plain SELECT'
SELECT * FROM stadtwerke.customers WHERE customer_no = 1001;
\! "$MARK" psql '\copy (query) TO STDOUT'
\copy (SELECT customer_no, name FROM stadtwerke.customers) TO STDOUT
\! "$MARK" psql 'transaction'
BEGIN;
INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES (1001, 'Rückruf', 'aus psql');
UPDATE stadtwerke.tickets SET status = 'closed' WHERE customer_no = 1001 AND note = 'aus psql';
COMMIT;
\! "$MARK" psql 'quit'
\q
