-- OpenTelemetry (tideflow/tracing.py): the W3C traceparent of the span that appended an event,
-- kept beside the event (never in it: the event stays as received), so the subscription that
-- delivers it -- another task, another process -- continues the same trace. NULL while tracing
-- is off: adding the column rewrites nothing, and an append without tracing writes a NULL.

ALTER TABLE tideflow_events ADD COLUMN trace_parent text;
