-- TimescaleDB, when the server has it (installed and preloaded): readings
-- becomes a hypertable with one-day chunks. On plain PostgreSQL this
-- migration does nothing and readings stays a plain table with a BRIN index
-- on ts; every query the services run works on both.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('readings', 'ts',
            chunk_time_interval => interval '1 day', migrate_data => true);
        RAISE NOTICE 'readings is a TimescaleDB hypertable';
    ELSE
        RAISE NOTICE 'TimescaleDB not available: readings stays a plain table';
    END IF;
END
$$;
