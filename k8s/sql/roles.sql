-- kubernaut-storage database roles: an owner that migrates and maintains, a runtime role for the
-- API pods that can only append (INSERT) and read (SELECT) audit data, and an admin role for the
-- auditors' admin pods that reads everything and keeps sign-in sessions but writes no audit
-- data. Why and how: docs/DATABASE_ROLES.md.
--
-- Run as a superuser (or your provider's admin role: rds_superuser, cloudsqlsuperuser, ...),
-- connected to the service's database. Idempotent: run it once before the first migration
-- (roles, extension, schema privileges) and again after every migration that adds a table
-- (table privileges):
--
--   psql "$ADMIN_DATABASE_URL" -v ON_ERROR_STOP=1 \
--        -v owner=kubernaut_storage_owner -v runtime=kubernaut_storage_app \
--        -v admin=kubernaut_storage_admin -f k8s/sql/roles.sql
--
-- No passwords here: set them with \password or your secret manager, then put them in the
-- DATABASE_URL secrets (k8s/secret.example.yaml).

\if :{?owner}
\else
  \set owner kubernaut_storage_owner
\endif
\if :{?runtime}
\else
  \set runtime kubernaut_storage_app
\endif
\if :{?admin}
\else
  \set admin kubernaut_storage_admin
\endif

SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'runtime')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'runtime') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'admin')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'admin') \gexec

-- pgvector is not a trusted extension: only a superuser may create it. The owner's first
-- migration then finds it (CREATE EXTENSION IF NOT EXISTS) instead of failing.
CREATE EXTENSION IF NOT EXISTS vector;

-- Owner: creates and alters the schema (migrations), creates and drops partitions
-- (audit_partitions_ensure, retention), prunes idempotency keys, backfills embeddings.
SELECT format('GRANT CONNECT, TEMPORARY, CREATE ON DATABASE %I TO %I', current_database(), :'owner') \gexec
GRANT USAGE, CREATE ON SCHEMA public TO :"owner";

-- Runtime: connects and uses the schema, creates nothing. (PostgreSQL < 15 let PUBLIC create
-- in the public schema; take that away so the runtime role cannot plant objects.)
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), :'runtime', :'admin') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"runtime", :"admin";
-- Temporary tables: PUBLIC may create them by default. Neither runtime role needs one, and a
-- temporary table (or function) can shadow a public one for the rest of the session.
SELECT format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()) \gexec
-- A write commits within a bounded time after its recorded_at (docs/INTEGRITY.md): together
-- with AUDIT_WRITE_MAX_LAG_SECONDS these keep it below AUDIT_SEAL_SETTLE_SECONDS, so a window
-- the sealing job seals can no longer gain a row. The owner's maintenance commands are not bound.
ALTER ROLE :"runtime" SET statement_timeout = '5s';
ALTER ROLE :"runtime" SET idle_in_transaction_session_timeout = '5s';
-- The write-lag bound lives in the owner's audit_write_limits table, which the runtime role
-- cannot change; a session setting of the runtime role's own is ignored (docs/DATABASE_ROLES.md).
ALTER ROLE :"runtime" RESET kubernaut.audit_max_write_lag;

-- Tables the owner creates later (new partitions, new tables) are readable at once.
-- Nothing else is a default: every write privilege below is named table by table.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"runtime", :"admin";

SELECT to_regclass('public.audit_remediation') IS NOT NULL AS migrated \gset
\if :migrated
  -- Read. The API: idempotency keys, similar incidents, django_migrations (readiness); the
  -- admin: everything. The API's role never reads the sign-in tables (password hashes,
  -- session keys): a compromised API pod must not be a way into the admin.
  GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"runtime", :"admin";
  REVOKE ALL ON auth_user, auth_user_groups, auth_user_user_permissions, auth_group,
                auth_group_permissions, django_session, django_admin_log,
                axes_accessattempt, axes_accessattemptexpiration, axes_accessfailurelog, axes_accesslog
     FROM :"runtime";

  -- Append: the write path's transaction (audit row, embedding or backlog row, idempotency
  -- key). Through the partitioned parents only; partitions need no grants of their own.
  -- No UPDATE, DELETE or TRUNCATE anywhere on audit data: the triggers stop UPDATE and
  -- DELETE even for the owner, privileges stop TRUNCATE (which no row trigger sees).
  GRANT INSERT ON audit_remediation, audit_aianalysis, audit_workflow, audit_execution,
                  audit_events, incident_embeddings, embedding_backlog, audit_idempotency_keys
     TO :"runtime";

  -- Django's own tables for the auditors' read-only admin, for the admin's role only: sign-in
  -- sessions and last_login, and the admin's action log. None of them holds audit data.
  GRANT INSERT, UPDATE, DELETE ON django_session TO :"admin";
  -- The password: Django rewrites a hash at the first sign-in after its hasher changed (a
  -- Django upgrade raising PBKDF2's iterations); without it that sign-in fails. It adds no
  -- reach: the role already reads every table the admin shows.
  GRANT UPDATE (last_login, password) ON auth_user TO :"admin";
  GRANT INSERT ON django_admin_log TO :"admin";
  -- django-axes: failed sign-ins per (username, address), cleared by a success or the cool-off.
  GRANT INSERT, UPDATE, DELETE ON axes_accessattempt, axes_accessattemptexpiration,
                                  axes_accessfailurelog, axes_accesslog
     TO :"admin";
\else
  \echo 'tables not migrated yet: run manage.py migrate as the owner, then run this script again'
\endif
