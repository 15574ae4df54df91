-- The SQL of one `POST /api/incidents` with two services, statement for statement, as the
-- server sends it (captured with log_statement=all): one transaction from the token lookup
-- to the commit. :org, :nservices and :token_hash are set by the harness.
\set n1 random(1, :nservices)
\set n2 random(1, :nservices)
\set sev random(1, 4)
BEGIN;
SELECT api_tokens.id, api_tokens.token_hash, api_tokens.organization_id, api_tokens.role,
  api_tokens.scope, api_tokens.revoked_at, api_tokens.expires_at, api_tokens.last_used_at,
  api_tokens.service_account_id, users.id, users.email, users.name, users.disabled,
  memberships.role, service_accounts.name, service_accounts.role, service_accounts.disabled
  FROM api_tokens
  LEFT OUTER JOIN users ON users.id = api_tokens.user_id
  LEFT OUTER JOIN memberships ON memberships.user_id = api_tokens.user_id
    AND memberships.organization_id = api_tokens.organization_id
  LEFT OUTER JOIN service_accounts ON service_accounts.id = api_tokens.service_account_id
  WHERE api_tokens.token_hash = ':token_hash';
-- The server's one statement; the services are picked by name here (pgbench has no list
-- of ids to draw from), as cheap an index look-up as the server's by id.
WITH found AS (
    SELECT services.id, services.name FROM services
    WHERE services.organization_id = ':org'
    AND services.name IN ('service-' || lpad(:n1::text, 4, '0'),
                          'service-' || lpad(:n2::text, 4, '0'))
), incident AS (
    INSERT INTO incidents (id, organization_id, title, description, severity, status,
        root_cause, commander, created_at, updated_at, version)
    VALUES (gen_random_uuid(), ':org', 'Bench incident', 'Created by pgbench',
        (ARRAY['critical','high','medium','low'])[:sev], 'open', NULL, NULL, now(), now(), 1)
    RETURNING id
), links AS (
    INSERT INTO incident_services (incident_id, service_id, created_at, organization_id)
    SELECT incident.id, found.id, now(), ':org' FROM incident, found
), first_event AS (
    INSERT INTO timeline_events (id, organization_id, incident_id, type, source, title,
        description, occurred_at, metadata, actor, created_at)
    SELECT gen_random_uuid(), ':org', incident.id, 'incident_created', 'reliability-studio',
        'Incident opened with severity high', NULL, now(),
        jsonb_build_object('severity', 'high', 'service_ids', (SELECT jsonb_agg(id) FROM found)),
        'owner', now()
    FROM incident
), evidence_run AS (
    INSERT INTO analysis_runs (id, organization_id, incident_id, status, requested_by,
        due_at, attempts, created_at, updated_at)
    SELECT gen_random_uuid(), ':org', incident.id, 'pending', 'owner', now(), 0, now(), now()
    FROM incident
)
SELECT (SELECT id FROM incident) AS incident_id, (SELECT count(*) FROM found) AS found \gset
SELECT * FROM notification_policies WHERE organization_id = ':org' AND enabled IS true;
INSERT INTO audit_entries (occurred_at, actor_kind, actor_id, actor_name, token_id, request_id,
  action, resource_type, resource_id, after, id, organization_id)
  VALUES (now(), 'user', 'u', 'owner', 't', 'r', 'incident.created', 'incident',
  ':incident_id', '{"title": "Bench incident", "status": "open"}', gen_random_uuid(), ':org'),
  (now(), 'user', 'u', 'owner', 't', 'r', 'incident_service.created', 'incident_service',
  ':incident_id', '{"service_id": "s1"}', gen_random_uuid(), ':org'),
  (now(), 'user', 'u', 'owner', 't', 'r', 'incident_service.created', 'incident_service',
  ':incident_id', '{"service_id": "s2"}', gen_random_uuid(), ':org'),
  (now(), 'user', 'u', 'owner', 't', 'r', 'timeline_event.created', 'timeline_event',
  ':incident_id', '{"type": "incident_created"}', gen_random_uuid(), ':org');
COMMIT;
