-- DuckDB peer of `funnel report`: the counting rules of DESIGN.md §3 and §7 with funnel.yaml's
-- defaults (viewability 0.5 / 1000 ms, dedup 3600 s, bots > 20 clicks / 60 s, clicks -5 s..+1800 s
-- deduplicated, last-click conversions within 24 h, no view-through), then the per-user, per-variant
-- and per-variant×position sums. Not done here: §7 validation and quarantine reasons (unparsable
-- lines and fields of the wrong type are read as NULL by ignore_errors; a line then missing type,
-- event_id, user_id or ts is skipped), segments, statistics, diagnosis.
-- duckdb_report.py substitutes ${EVENTS} (the JSONL file) and ${OUT} (an existing directory).
-- All times are integer epoch milliseconds; rn is the 1-based line number in the file.
SET TimeZone = 'UTC';

-- 1. Read with an explicit schema; parse ts (RFC 3339 or epoch ms, sub-ms truncated).
CREATE TEMP TABLE e AS
SELECT * EXCLUDE (ordinality, ts), ordinality AS rn,
       CASE WHEN regexp_full_match(ts, '-?[0-9]+') THEN TRY_CAST(ts AS BIGINT)
            ELSE epoch_us(TRY_CAST(ts AS TIMESTAMPTZ)) // 1000 END AS ts
FROM read_json('${EVENTS}', format = 'newline_delimited', ignore_errors = true, columns = {
    type: 'VARCHAR', event_id: 'VARCHAR', ts: 'VARCHAR', user_id: 'VARCHAR',
    experiment: 'VARCHAR', variant: 'VARCHAR', item_id: 'VARCHAR', position: 'BIGINT',
    surface: 'VARCHAR', request_id: 'VARCHAR', propensity: 'DOUBLE', price: 'DOUBLE',
    viewable_fraction: 'DOUBLE', viewable_ms: 'DOUBLE', context: 'MAP(VARCHAR, VARCHAR)',
    bot: 'BOOLEAN', impression_id: 'VARCHAR', quantity: 'BIGINT', order_id: 'VARCHAR',
    items: 'STRUCT(item_id VARCHAR, quantity BIGINT, price DOUBLE)[]'}) WITH ORDINALITY
WHERE type IN ('exposure', 'impression', 'click', 'add_to_cart', 'purchase')
  AND event_id <> '' AND user_id <> '' AND ts IS NOT NULL;

-- 2. Duplicates: the first line of each event_id wins (deleted in place: one copy of the log).
CREATE TEMP TABLE dup AS
SELECT event_id, min(rn) AS first_rn, count(*) - 1 AS extra FROM e GROUP BY event_id HAVING count(*) > 1;
DELETE FROM e USING dup WHERE e.event_id = dup.event_id AND e.rn > dup.first_rn;

-- 3. Bots: any bot:true, or 21+ clicks with last.ts - first.ts <= 60 s (i.e. click k and k+20).
CREATE TEMP TABLE bots AS
SELECT user_id FROM e WHERE bot
UNION
SELECT user_id FROM (SELECT user_id, ts, lead(ts, 20) OVER (PARTITION BY user_id ORDER BY ts) AS ts21
                     FROM e WHERE type = 'click')
WHERE ts21 - ts <= 60000;
DELETE FROM e WHERE user_id IN (SELECT user_id FROM bots);

-- 4. Viewability (judged only when both fields are present; thresholds inclusive).
CREATE TEMP TABLE imp AS
SELECT rn, event_id, user_id, ts, item_id, coalesce(surface, 'default') AS surface, position,
       experiment, variant,
       viewable_fraction IS NULL OR viewable_ms IS NULL
         OR (viewable_fraction >= 0.5 AND viewable_ms >= 1000) AS viewable
FROM e WHERE type = 'impression';

-- 5. Impression dedup, exact (not approximated): per (user, item, surface), viewable impressions in
--    (ts, rn) order; the first is kept and opens [ts, ts + 3600 s]; those inside collapse into it; the
--    first one after it is kept and opens a new window. list_reduce walks each group's sorted list
--    once and emits, for every element, the kept impression it belongs to (quadratic in a group's
--    size, as list_append copies; groups are small).
CREATE TEMP TABLE anchor AS
SELECT unnest(l).id AS event_id,
       unnest(list_reduce(l[2:], lambda acc, x: list_append(acc,
                CASE WHEN x.ts > acc[-1].ts + 3600000 THEN x ELSE acc[-1] END), [l[1]])).id AS kept_id
FROM (SELECT list({ts: ts, id: event_id} ORDER BY ts, rn) AS l
      FROM imp WHERE viewable GROUP BY user_id, item_id, surface);

CREATE OR REPLACE TEMP TABLE imp AS SELECT imp.*, kept_id FROM imp LEFT JOIN anchor USING (event_id);

-- 6. Clicks: look the impression up by (user_id, impression_id); the window is measured from the
--    named impression's own ts; the earliest in-window click of a kept impression (and its
--    collapsed ones) counts. The click's item is the impression's item.
CREATE TEMP TABLE clk AS
SELECT c.user_id, c.ts, i.event_id IS NULL AS orphan, i.viewable, i.kept_id,
       c.ts - i.ts BETWEEN -5000 AND 1800000 AS in_window
FROM e c LEFT JOIN imp i ON i.event_id = c.impression_id AND i.user_id = c.user_id
WHERE c.type = 'click';

CREATE TEMP TABLE clicked AS
SELECT k.event_id, k.user_id, k.item_id, k.ts, k.rn, min(c.ts) AS c, count(*) AS n_in_window
FROM clk c JOIN imp k ON k.event_id = c.kept_id
WHERE c.viewable AND c.in_window GROUP BY ALL;

-- 7. Conversions (last click, 24 h): each add_to_cart and purchase item line goes to the user's
--    kept impression of that item with the latest counted click c in [t - 24 h, t]
--    (ties: later impression ts, then later line).
CREATE TEMP TABLE conv AS
SELECT user_id, item_id, ts, false AS is_purchase, 0.0 AS revenue FROM e WHERE type = 'add_to_cart'
UNION ALL
SELECT user_id, line.item_id, ts, true, coalesce(line.quantity, 1) * line.price
FROM (SELECT user_id, ts, unnest(items) AS line FROM e WHERE type = 'purchase');

CREATE TEMP TABLE attributed AS
SELECT v.*, CASE WHEN k.c >= v.ts - 86400000 THEN k.event_id END AS imp_id
FROM conv v ASOF LEFT JOIN
     (SELECT * FROM clicked QUALIFY row_number() OVER (PARTITION BY user_id, item_id, c
                                                       ORDER BY ts DESC, rn DESC) = 1) k
  ON v.user_id = k.user_id AND v.item_id = k.item_id AND v.ts >= k.c;

CREATE TEMP TABLE imp_conv AS
SELECT imp_id, bool_or(NOT is_purchase) AS carted, bool_or(is_purchase) AS purchased,
       sum(revenue) AS revenue
FROM attributed WHERE imp_id IS NOT NULL GROUP BY imp_id;

-- 8. Assignment: the variant of the first exposure (ts, rn) to the only experiment; users exposed
--    to 2+ variants are leaked. Only kept impressions at/after the first exposure whose own variant
--    (if set, for this experiment) agrees are analysed; their clicks and conversions go with them.
SELECT CASE WHEN count(DISTINCT experiment) <> 1
            THEN error('need exactly one experiment among exposures') END
FROM e WHERE type = 'exposure';

CREATE TEMP TABLE asg AS
SELECT user_id, arg_min(variant, {t: ts, rn: rn}) AS variant, min(ts) AS t0,
       count(DISTINCT variant) > 1 AS leaked, any_value(experiment) AS experiment
FROM e WHERE type = 'exposure' GROUP BY user_id;

CREATE TEMP TABLE ai AS
SELECT a.user_id, a.variant, k.position, c.event_id IS NOT NULL AS clicked,
       coalesce(v.carted, false) AS carted, coalesce(v.purchased, false) AS purchased,
       coalesce(v.revenue, 0) AS revenue,
       k.variant IS NOT NULL AND k.variant <> a.variant
         AND (k.experiment IS NULL OR k.experiment = a.experiment) AS mismatch
FROM imp k JOIN asg a ON a.user_id = k.user_id AND NOT a.leaked AND k.ts >= a.t0
LEFT JOIN clicked c ON c.event_id = k.event_id
LEFT JOIN imp_conv v ON v.imp_id = k.event_id
WHERE k.event_id = k.kept_id;

-- 9. Per-user sums (zeros included), then per variant and per variant × position.
CREATE TEMP TABLE per_user AS
SELECT a.user_id, a.variant,
       coalesce(i.impressions, 0) AS impressions, coalesce(i.clicks, 0) AS clicks,
       coalesce(i.carts, 0) AS carts, coalesce(i.purchases, 0) AS purchases,
       coalesce(i.revenue, 0) AS revenue, coalesce(o.orders, 0) AS orders,
       coalesce(o.orders, 0) > 0 AS converted, coalesce(o.order_revenue, 0) AS order_revenue
FROM asg a
LEFT JOIN (SELECT user_id, count(*) AS impressions, count(*) FILTER (clicked) AS clicks,
                  count(*) FILTER (carted) AS carts, count(*) FILTER (purchased) AS purchases,
                  sum(revenue) AS revenue
           FROM ai WHERE NOT mismatch GROUP BY user_id) i USING (user_id)
LEFT JOIN (SELECT p.user_id, count(DISTINCT p.order_id) AS orders,
                  sum(list_sum([coalesce(l.quantity, 1) * l.price FOR l IN p.items])) AS order_revenue
           FROM e p JOIN asg a ON a.user_id = p.user_id AND p.ts >= a.t0
           WHERE p.type = 'purchase' GROUP BY p.user_id) o USING (user_id)
WHERE NOT a.leaked;

COPY (SELECT variant, count(*) AS users, sum(impressions) AS impressions, sum(clicks) AS clicks,
             sum(carts) AS carts, sum(purchases) AS purchases, sum(revenue) AS revenue,
             sum(orders) AS orders, count(*) FILTER (converted) AS converting_users,
             sum(order_revenue) AS order_revenue
      FROM per_user GROUP BY variant ORDER BY variant)
TO '${OUT}/variants.json' (FORMAT json);

COPY (SELECT variant, position, count(*) AS impressions, count(*) FILTER (clicked) AS clicks
      FROM ai WHERE NOT mismatch GROUP BY ALL ORDER BY ALL)
TO '${OUT}/positions.json' (FORMAT json);

COPY (SELECT * FROM per_user ORDER BY user_id) TO '${OUT}/per_user.parquet' (FORMAT parquet);

-- The data_quality counters these steps give for free (names as in the report's JSON).
COPY (SELECT
  (SELECT coalesce(sum(extra), 0) FROM dup) AS duplicate_events,
  (SELECT count(*) FROM bots) AS bot_users,
  (SELECT count(*) FILTER (NOT viewable) FROM imp) AS non_viewable_impressions,
  (SELECT count(*) FILTER (event_id <> kept_id) FROM imp) AS collapsed_impressions,
  (SELECT count(*) FILTER (orphan) FROM clk) AS orphan_clicks,
  (SELECT count(*) FILTER (viewable AND NOT in_window) FROM clk) AS late_clicks,
  (SELECT count(*) FILTER (NOT orphan AND NOT viewable) FROM clk) AS non_viewable_clicks,
  (SELECT coalesce(sum(n_in_window - 1), 0) FROM clicked) AS duplicate_clicks,
  (SELECT count(*) FILTER (imp_id IS NULL) FROM attributed) AS unattributed_conversions,
  (SELECT count(*) FILTER (leaked) FROM asg) AS leaked_users,
  (SELECT count(*) FILTER (mismatch) FROM ai) AS variant_mismatches)
TO '${OUT}/data_quality.json' (FORMAT json);
