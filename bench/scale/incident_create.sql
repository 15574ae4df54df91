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
SELECT (array_agg(id ORDER BY name))[1] AS s1, (array_agg(id ORDER BY name DESC))[1] AS s2
  FROM services WHERE organization_id = ':org'
  AND name IN ('service-' || lpad(:n1::text, 4, '0'), 'service-' || lpad(:n2::text, 4, '0')) \gset
INSERT INTO incidents (title, description, severity, status, root_cause, commander,
  acknowledged_at, resolved_at, closed_at, id, organization_id, created_at, updated_at)
  VALUES ('Bench incident', 'Created by pgbench', (ARRAY['critical','high','medium','low'])[:sev],
  'open', NULL, NULL, NULL, NULL, NULL, gen_random_uuid(), ':org', now(), now())
  RETURNING id AS incident_id \gset
INSERT INTO analysis_runs (incident_id, status, requested_by, due_at, attempts, started_at,
  finished_at, backends, hypotheses, similar_incidents, error, id, organization_id,
  created_at, updated_at)
  VALUES (':incident_id', 'pending', 'owner', now(), 0, NULL, NULL, NULL, NULL, NULL, NULL,
  gen_random_uuid(), ':org', now(), now());
INSERT INTO incident_services (incident_id, service_id, created_at, organization_id)
  VALUES (':incident_id', ':s1', now(), ':org');
INSERT INTO incident_services (incident_id, service_id, created_at, organization_id)
  VALUES (':incident_id', ':s2', now(), ':org') ON CONFLICT DO NOTHING;
INSERT INTO timeline_events (incident_id, type, source, title, description, occurred_at,
  metadata, actor, created_at, id, organization_id)
  VALUES (':incident_id', 'incident_created', 'reliability-studio',
  'Incident opened with severity high', NULL, now(),
  jsonb_build_object('severity', 'high', 'service_ids', jsonb_build_array(':s1', ':s2')),
  'owner', now(), gen_random_uuid(), ':org');
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
