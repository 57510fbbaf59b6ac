-- One database and one login role per service: each service touches only its own data
-- (DESIGN.md). Each role owns its database, so its migrations may create tables in it
-- (on Postgres 15+ the public schema belongs to the database owner), and no other role
-- may even connect to it.
--
-- compose.yaml mounts this file into /docker-entrypoint-initdb.d; the postgres image runs
-- it once, as the superuser, when the data volume is empty. After editing it, recreate
-- the volume: `docker compose down -v`.
--
-- The passwords are for this local stack only and match the DATABASE_URLs in
-- compose.yaml; the server is not published to the host.

CREATE ROLE order_svc LOGIN PASSWORD 'order_svc_dev';
CREATE DATABASE orders OWNER order_svc;
REVOKE CONNECT, TEMPORARY ON DATABASE orders FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE orders TO order_svc;

CREATE ROLE payment_svc LOGIN PASSWORD 'payment_svc_dev';
CREATE DATABASE payments OWNER payment_svc;
REVOKE CONNECT, TEMPORARY ON DATABASE payments FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE payments TO payment_svc;

CREATE ROLE inventory_svc LOGIN PASSWORD 'inventory_svc_dev';
CREATE DATABASE inventory OWNER inventory_svc;
REVOKE CONNECT, TEMPORARY ON DATABASE inventory FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE inventory TO inventory_svc;

CREATE ROLE shipping_svc LOGIN PASSWORD 'shipping_svc_dev';
CREATE DATABASE shipping OWNER shipping_svc;
REVOKE CONNECT, TEMPORARY ON DATABASE shipping FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE shipping TO shipping_svc;

CREATE ROLE orchestrator LOGIN PASSWORD 'orchestrator_dev';
CREATE DATABASE orchestrator OWNER orchestrator;
REVOKE CONNECT, TEMPORARY ON DATABASE orchestrator FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE orchestrator TO orchestrator;

-- Nor may the service roles connect to the maintenance databases (the superuser still can).
REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;
