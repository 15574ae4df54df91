-- The SQL of one `POST /api/incidents/{id}/timeline` (a note), statement for statement, as
-- the server sends it (captured with log_statement=all): one transaction from the token
-- lookup to the commit. The incident is drawn from
-- `bench_incident_sample` (filled by the harness: :nsample random incident ids), as the
-- wrk scenario draws from its file of ids. :org and :token_hash are set by the harness.
\set k random(1, :nsample)
SELECT id AS incident_id FROM bench_incident_sample WHERE n = :k \gset
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
INSERT INTO timeline_events (incident_id, type, source, title, description, occurred_at,
  metadata, actor, created_at, id, organization_id)
  SELECT incidents.id, 'note', 'user', 'Bench note', NULL, now(), '{}', 'owner', now(),
  gen_random_uuid(), ':org'
  FROM incidents WHERE incidents.id = ':incident_id' AND incidents.organization_id = ':org'
  RETURNING timeline_events.id;
INSERT INTO audit_entries (occurred_at, actor_kind, actor_id, actor_name, token_id, request_id,
  action, resource_type, resource_id, after, id, organization_id)
  VALUES (now(), 'user', 'u', 'owner', 't', 'r', 'timeline_event.created', 'timeline_event',
  ':incident_id', '{"type": "note", "title": "Bench note"}', gen_random_uuid(), ':org');
SELECT incident_services.incident_id, incident_services.service_id FROM incident_services
  WHERE incident_services.incident_id IN (':incident_id');
COMMIT;
