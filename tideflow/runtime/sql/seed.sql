-- Copies of a parked instance (tideflow/runtime/seeding.py), used by tideflow/runtime/gateway.py.
-- Every statement takes the template's id ($1), the new ids ($2), the JSON text of the marker
-- ($3), per new id the JSON text that replaces it ($4), the JSON text of the template's random
-- seed ($5: its first new_id result, '' if none) and per new id its own seed ($6): in every JSON
-- column the template's id becomes the copy's, the marker its value and the seed its seed. The
-- triggers on tideflow_instances and tideflow_event_waits derive the correlation origin and keys
-- as for any insert.

-- seed_template --
-- The instance to copy, with whether any of its event waits has a due time and its random
-- seed (the JSON text of its run's first new_id result)
SELECT i.id, i.status, i.lease_owner, i.wake_at, i.requested, i.woken, i.input::text AS input,
       EXISTS (SELECT 1 FROM tideflow_event_waits w
               WHERE w.instance_id = i.id AND w.due_at IS NOT NULL) AS timed,
       (SELECT (j.entry->'result')::text FROM tideflow_journal j
        WHERE j.instance_id = i.id AND j.run_no = i.run_no AND j.op = 'new_id'
        ORDER BY j.seq LIMIT 1) AS seed
FROM tideflow_instances i
WHERE i.id = $1;

-- seed_instances --
-- The instance rows of the copies, in the order of $2
INSERT INTO tideflow_instances
    (id, workflow_id, version, run_no, status, current_state, input, data, output, error,
     parent_id, parent_key, requested, woken, wake_at, lease_owner, lease_until, crashes,
     crashed_at)
SELECT n.id, t.workflow_id, t.version, t.run_no, t.status, t.current_state,
       replace(replace(replace(t.input::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb,
       replace(replace(replace(t.data::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb,
       replace(replace(replace(t.output::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb,
       replace(replace(replace(t.error::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb,
       t.parent_id, t.parent_key, t.requested, t.woken, t.wake_at, t.lease_owner,
       t.lease_until, t.crashes, t.crashed_at
FROM tideflow_instances t
CROSS JOIN unnest($2::text[], $4::text[], $6::text[]) WITH ORDINALITY AS n (id, value, seed, ord)
WHERE t.id = $1
ORDER BY n.ord;

-- seed_journal --
-- The journal entries of the copies, in the template's order
INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
SELECT n.id, j.run_no, j.op, j.step_key,
       replace(replace(replace(j.entry::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb
FROM unnest($2::text[], $4::text[], $6::text[]) WITH ORDINALITY AS n (id, value, seed, ord)
CROSS JOIN tideflow_journal j
WHERE j.instance_id = $1
ORDER BY n.ord, j.seq;

-- seed_timeline --
-- The timeline rows of the copies, in the template's order, stamped now
INSERT INTO tideflow_timeline (instance_id, run_no, kind, step_key, state, detail, at)
SELECT n.id, l.run_no, l.kind, l.step_key, l.state,
       replace(replace(replace(l.detail::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb, now()
FROM unnest($2::text[], $4::text[], $6::text[]) WITH ORDINALITY AS n (id, value, seed, ord)
CROSS JOIN tideflow_timeline l
WHERE l.instance_id = $1
ORDER BY n.ord, l.seq;

-- seed_waits --
-- The open event waits of the copies (their triggers index their correlation keys)
INSERT INTO tideflow_event_waits
    (instance_id, wait_key, run_no, all_events, events, event_types, received, due_at)
SELECT n.id, w.wait_key, w.run_no, w.all_events,
       replace(replace(replace(w.events::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb, w.event_types,
       replace(replace(replace(w.received::text, $1, n.id), $3, n.value), $5, n.seed)::jsonb, w.due_at
FROM unnest($2::text[], $4::text[], $6::text[]) WITH ORDINALITY AS n (id, value, seed, ord)
CROSS JOIN tideflow_event_waits w
WHERE w.instance_id = $1
ORDER BY n.ord, w.wait_key;
