-- The disaster runtime's cursor over jma_events: the id of the last change event handed to the engine.
-- Written in the same transaction as the engine's decision, so a crash never skips or replays a 訂正/取消.
CREATE TABLE disaster_runtime (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL
);
