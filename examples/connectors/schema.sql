-- The table the sensor-reports sink writes (connectors.yaml).
CREATE TABLE IF NOT EXISTS sensor_reports (
    sensor text PRIMARY KEY,
    location text,
    celsius numeric
);
