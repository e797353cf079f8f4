-- Login roles of the sample call center. Run as a superuser; passwords are the demo's.
SET password_encryption = 'scram-sha-256';

CREATE ROLE crm_agents NOLOGIN;
CREATE ROLE wasser_agents NOLOGIN;
CREATE ROLE agent_wasser  LOGIN PASSWORD 'wasser'  IN ROLE crm_agents;
CREATE ROLE agent_wasser2 LOGIN PASSWORD 'wasser2' IN ROLE crm_agents, wasser_agents;
CREATE ROLE agent_zeitung LOGIN PASSWORD 'zeitung' IN ROLE crm_agents;
CREATE ROLE qa_lead       LOGIN PASSWORD 'qa'      IN ROLE crm_agents;
-- The proxy's own catalog connection: reads the schema, never customer rows.
CREATE ROLE unscharf      LOGIN PASSWORD 'unscharf-catalog';
-- Lets the migration fence end a backend with more work queued than cancels can end before a
-- migration commits (README, "Migrations").
GRANT pg_signal_backend TO unscharf;

-- Postgres grants are deliberately wider than the purpose policies: the tests prove
-- that refusals come from unscharf, not from missing privileges.
GRANT USAGE ON SCHEMA stadtwerke, zeitung TO crm_agents;
GRANT SELECT ON ALL TABLES IN SCHEMA stadtwerke, zeitung, public TO crm_agents;
GRANT INSERT, UPDATE, DELETE ON stadtwerke.tickets, zeitung.subscriptions, zeitung.leads TO crm_agents;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA stadtwerke, zeitung TO crm_agents;
GRANT USAGE ON SCHEMA stadtwerke, zeitung TO unscharf;
