-- Send-cohort rates per campaign per day, over the Parquet files of `statusflow export-parquet`.
--
-- First make the exported cohort funnels a view (the path is the export's --out):
--   CREATE VIEW funnel AS
--     SELECT * FROM read_parquet('export/topic=wa.funnel/date=*/*.parquet', hive_partitioning = true);
--
-- wa.funnel is an upsert topic: each record carries a cohort's whole current counts, with a
-- revision that grows with every update (and at-least-once delivery may repeat a revision), so
-- keep one row per cohort, its highest revision. A message counts in the cohort of its first
-- event time, once in attempted and once in one outcome (delivered, failed, expired or pending),
-- so the rates below are shares of messages and never exceed 1: ratios of the day's sums, not
-- averages of cohort rates. `date` is the UTC date of the cohort's start.
WITH latest AS (
    SELECT *
    FROM funnel
    WHERE scope = 'campaign'
    QUALIFY row_number() OVER (PARTITION BY funnel_id ORDER BY revision DESC, kafka_offset DESC) = 1
)
SELECT
    campaign,
    CAST("date" AS DATE) AS day,
    sum(attempted) AS attempted,
    sum(delivered) AS delivered,
    sum("read") AS "read",
    sum(failed) AS failed,
    sum(pending) AS pending,
    sum(delivered) / nullif(sum(attempted), 0) AS delivery_rate,
    sum("read") / nullif(sum(delivered), 0) AS read_rate,
    sum(failed) / nullif(sum(attempted), 0) AS failure_rate
FROM latest
GROUP BY campaign, day
ORDER BY campaign, day;
