-- DuckDB peer of `funnel report`: the counting rules of DESIGN.md §3 and §7 with funnel.yaml's
-- defaults (viewability 0.5 / 1000 ms, dedup 3600 s, bots > 20 clicks / 60 s, clicks -5 s..+1800 s
-- deduplicated, last-click conversions within 24 h, no view-through), then the per-user, per-variant
-- and per-variant×position sums. Step 1 applies §2/§7 validation and drops every line the contract
-- quarantines (it does not name the reason or count quarantined lines). Not done here: segments,
-- statistics, diagnosis, and the validation cases DuckDB's JSON reader cannot see: NaN/Infinity in a
-- field that is not checked (a checked field must be finite), a repeated key (DuckDB keeps the first,
-- the contract the last), lines over 1 MiB.
-- duckdb_report.py substitutes ${EVENTS} (the JSONL file) and ${OUT} (an existing directory).
-- All times are integer epoch milliseconds; rn is the 1-based line number in the file.
SET TimeZone = 'UTC';

-- 1. Read every checked field as raw JSON (so "3" is not taken for 3, nor 1.5 for 2, nor true for 1;
--    JSON null reads as SQL NULL = absent), validate per type, keep the valid lines, typed.
--    DuckDB re-serialises each value minified, so the text tells the JSON type: a string starts
--    with ", and only numbers (and NaN, ±Infinity: not finite) cast to DOUBLE. Unparsable lines
--    and non-objects come back with every field NULL and fail the type check.
CREATE TEMP MACRO j_str(j) AS starts_with(j::VARCHAR, '"');
CREATE TEMP MACRO j_dbl(j) AS TRY_CAST(j::VARCHAR AS DOUBLE);        -- NULL unless a JSON number
CREATE TEMP MACRO j_num(j) AS isfinite(j_dbl(j));
CREATE TEMP MACRO j_int(j, lo) AS                    -- integral (3.0 is 3), lo ≤ value ≤ 2^31 - 1
  j_dbl(j) BETWEEN lo AND 2147483647 AND j_dbl(j) = trunc(j_dbl(j));
CREATE TEMP MACRO j_context(j) AS starts_with(j::VARCHAR, '{')        -- an object of strings
  AND len(list_filter(json_type(j, '$.*'), lambda t: t <> 'VARCHAR')) = 0;
CREATE TEMP MACRO j_item(el) AS json_type(el) = 'OBJECT' AND json_type(el, '$.item_id') = 'VARCHAR'
  AND j_num(el -> 'price') AND j_dbl(el -> 'price') >= 0
  AND (coalesce(json_type(el, '$.quantity'), 'NULL') = 'NULL' OR j_int(el -> 'quantity', 1));
-- ts. A string must be RFC 3339 with an offset, fields in range (years 0001-9999, days per month
-- and leap year), sub-millisecond digits truncated. Common case (T, Z, <= 3 fraction digits):
-- DuckDB's TIMESTAMPTZ cast, exact there, also rejects impossible days (Feb 30); otherwise
-- (t/z, longer fractions) the arithmetic below. A number must be integral, within years 0001-9999.
CREATE TEMP MACRO rfc3339_re(t, z, frac) AS
  '([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])' || t
  || '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]' || frac || ')?(' || z || '|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil; y >= 1).
CREATE TEMP MACRO civil_days(y, m, d) AS
  (y - (m <= 2)::BIGINT) // 400 * 146097
  + ((y - (m <= 2)::BIGINT) % 400) * 365 + ((y - (m <= 2)::BIGINT) % 400) // 4
  - ((y - (m <= 2)::BIGINT) % 400) // 100
  + (153 * (m + CASE WHEN m > 2 THEN -3 ELSE 9 END) + 2) // 5 + d - 1 - 719468;
CREATE TEMP MACRO tz_len(s) AS CASE WHEN upper(right(s, 1)) = 'Z' THEN 1 ELSE 6 END;
-- Epoch ms of a string matching rfc3339_re; NULL for a day the month does not have.
CREATE TEMP MACRO rfc3339_ms(s) AS CASE
  WHEN TRY_CAST(substr(s, 9, 2) AS BIGINT) <= CASE TRY_CAST(substr(s, 6, 2) AS BIGINT)
         WHEN 2 THEN CASE WHEN TRY_CAST(substr(s, 1, 4) AS BIGINT) % 4 = 0
                            AND (TRY_CAST(substr(s, 1, 4) AS BIGINT) % 100 <> 0
                                 OR TRY_CAST(substr(s, 1, 4) AS BIGINT) % 400 = 0) THEN 29 ELSE 28 END
         WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END
  THEN civil_days(TRY_CAST(substr(s, 1, 4) AS BIGINT), TRY_CAST(substr(s, 6, 2) AS BIGINT),
                  TRY_CAST(substr(s, 9, 2) AS BIGINT)) * 86400000
    + TRY_CAST(substr(s, 12, 2) AS BIGINT) * 3600000 + TRY_CAST(substr(s, 15, 2) AS BIGINT) * 60000
    + TRY_CAST(substr(s, 18, 2) AS BIGINT) * 1000
    + TRY_CAST(rpad(left(substr(s, 21, greatest(length(s) - 20 - tz_len(s), 0)), 3), 3, '0') AS BIGINT)
    - CASE WHEN tz_len(s) = 1 THEN 0
           ELSE (CASE WHEN substr(s, -6, 1) = '-' THEN -1 ELSE 1 END)
                * (TRY_CAST(substr(s, -5, 2) AS BIGINT) * 60 + TRY_CAST(substr(s, -2, 2) AS BIGINT)) * 60000 END
  END;
CREATE TEMP MACRO ts_ms(j) AS CASE
  WHEN j_str(j) THEN CASE
    WHEN regexp_full_match(j ->> '$', rfc3339_re('T', 'Z', '{1,3}')) THEN epoch_ms(TRY_CAST(j ->> '$' AS TIMESTAMPTZ))
    WHEN regexp_full_match(j ->> '$', rfc3339_re('[Tt]', '[Zz]', '+')) THEN rfc3339_ms(j ->> '$') END
  WHEN j_dbl(j) BETWEEN -62135596800000 AND 253402300799999 AND j_dbl(j) = trunc(j_dbl(j))
    THEN j_dbl(j)::BIGINT END;

-- ts is validated by computing it (NULL when invalid), and those rows are deleted after, so that
-- the parse is not done twice (in the filter and in the projection).
CREATE TEMP TABLE e AS
SELECT ordinality AS rn, type, event_id ->> '$' AS event_id, ts_ms(ts) AS ts, user_id ->> '$' AS user_id,
       CASE WHEN type IN ('exposure', 'impression') THEN experiment ->> '$' END AS experiment,
       CASE WHEN type IN ('exposure', 'impression') THEN variant ->> '$' END AS variant,
       CASE WHEN type IN ('impression', 'add_to_cart') THEN item_id ->> '$' END AS item_id,
       CASE WHEN type = 'impression' THEN j_dbl(position)::BIGINT END AS position,
       CASE WHEN type = 'impression' THEN surface ->> '$' END AS surface,
       CASE WHEN type = 'impression' THEN j_dbl(viewable_fraction) END AS viewable_fraction,
       CASE WHEN type = 'impression' THEN j_dbl(viewable_ms) END AS viewable_ms,
       coalesce(bot::VARCHAR = 'true', false) AS bot,
       CASE WHEN type = 'click' THEN impression_id ->> '$' END AS impression_id,
       CASE WHEN type = 'purchase' THEN order_id ->> '$' END AS order_id,
       CASE WHEN type = 'purchase' THEN
         [{item_id: el ->> 'item_id', quantity: coalesce(j_dbl(el -> 'quantity')::BIGINT, 1),
           price: j_dbl(el -> 'price')} FOR el IN json_extract(items, '$[*]')] END AS items
FROM read_json('${EVENTS}', format = 'newline_delimited', ignore_errors = true, columns = {
    type: 'VARCHAR', event_id: 'JSON', ts: 'JSON', user_id: 'JSON', experiment: 'JSON',
    variant: 'JSON', item_id: 'JSON', position: 'JSON', surface: 'JSON', request_id: 'JSON',
    propensity: 'JSON', price: 'JSON', viewable_fraction: 'JSON', viewable_ms: 'JSON',
    context: 'JSON', bot: 'JSON', impression_id: 'JSON', quantity: 'JSON', order_id: 'JSON',
    items: 'JSON'}) WITH ORDINALITY
WHERE type IN ('exposure', 'impression', 'click', 'add_to_cart', 'purchase')
  AND j_str(event_id) AND event_id::VARCHAR <> '""' AND j_str(user_id) AND user_id::VARCHAR <> '""'
  AND (bot IS NULL OR bot::VARCHAR IN ('true', 'false'))
  AND CASE type
    WHEN 'exposure' THEN j_str(experiment) AND j_str(variant) AND (context IS NULL OR j_context(context))
    WHEN 'impression' THEN
      (experiment IS NULL OR j_str(experiment)) AND (variant IS NULL OR j_str(variant))
      AND j_str(item_id) AND j_int(position, 1)
      AND (surface IS NULL OR j_str(surface)) AND (request_id IS NULL OR j_str(request_id))
      AND (propensity IS NULL OR (j_dbl(propensity) > 0 AND j_dbl(propensity) <= 1))
      AND (price IS NULL OR (j_num(price) AND j_dbl(price) >= 0))
      AND (viewable_fraction IS NULL OR j_dbl(viewable_fraction) BETWEEN 0 AND 1)
      AND (viewable_ms IS NULL OR (j_num(viewable_ms) AND j_dbl(viewable_ms) >= 0))
      AND (context IS NULL OR j_context(context))
    WHEN 'click' THEN j_str(impression_id) AND (item_id IS NULL OR j_str(item_id))
    WHEN 'add_to_cart' THEN j_str(item_id) AND (impression_id IS NULL OR j_str(impression_id))
      AND (quantity IS NULL OR j_int(quantity, 1))
    WHEN 'purchase' THEN j_str(order_id) AND starts_with(items::VARCHAR, '[')
      AND items::VARCHAR <> '[]'
      AND len(list_filter(json_extract(items, '$[*]'), lambda el: NOT coalesce(j_item(el), false))) = 0
  END;
DELETE FROM e WHERE ts IS NULL;

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
