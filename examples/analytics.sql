-- Delivery and read rates per campaign per day, over the Parquet files of `statusflow export-parquet`.
--
-- First make the exported metric windows a view (the path is the export's --out):
--   CREATE VIEW metrics AS
--     SELECT * FROM read_parquet('export/topic=wa.metrics/date=*/*.parquet', hive_partitioning = true);
--
-- A window can be published several times (a late event publishes the next revision with the
-- same metric_id), and at-least-once delivery can repeat a revision: keep one row, the highest
-- revision, per window. Rates are ratios of the day's sums, not averages of window rates.
WITH latest AS (
    SELECT *
    FROM metrics
    WHERE scope = 'campaign'
    QUALIFY row_number() OVER (PARTITION BY metric_id ORDER BY revision DESC) = 1
)
SELECT
    campaign,
    CAST("date" AS DATE) AS day,
    sum(sent) AS sent,
    sum(delivered) AS delivered,
    sum("read") AS "read",
    sum(delivered) / nullif(sum(sent), 0) AS delivery_rate,
    sum("read") / nullif(sum(delivered), 0) AS read_rate
FROM latest
GROUP BY campaign, day
ORDER BY campaign, day;
