-- watched_volume: uttag, DDD and benefit cost of each watched group per prescriber and workplace,
-- against peers (zeros included: a peer who never prescribes the group counts as 0).

-- step: wv_raw view
SELECT 'prescriber' AS entity_kind, prescriber AS entity_code, group_code,
  sum(n) AS n, sum(ddd) AS ddd, sum(cost) AS cost
FROM aggw GROUP BY prescriber, group_code
UNION ALL
SELECT 'workplace' AS entity_kind, workplace AS entity_code, group_code,
  sum(n) AS n, sum(ddd) AS ddd, sum(cost) AS cost
FROM aggw GROUP BY workplace, group_code

-- step: wv view
SELECT e.entity_kind, e.entity_code, e.peer_group, g.group_code AS subject,
  CAST(coalesce(r.n, 0) AS DOUBLE) AS n,
  CAST(coalesce(r.ddd, 0) AS DOUBLE) AS ddd,
  CAST(coalesce(r.cost, 0) AS DOUBLE) AS cost
FROM ent e
CROSS JOIN (SELECT DISTINCT group_code FROM watch) g
LEFT JOIN wv_raw r
  ON r.entity_kind = e.entity_kind AND r.entity_code = e.entity_code AND r.group_code = g.group_code

-- step: wv_long table
SELECT entity_kind, entity_code, peer_group, subject, 'uttag' AS measure, n AS value, n, ddd, cost FROM wv
UNION ALL
SELECT entity_kind, entity_code, peer_group, subject, 'ddd' AS measure, ddd AS value, n, ddd, cost FROM wv
UNION ALL
SELECT entity_kind, entity_code, peer_group, subject, 'kostnad' AS measure, cost AS value, n, ddd, cost FROM wv

-- step: wv_stats table
SELECT entity_kind, peer_group, subject, measure, count(*) AS peer_n,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med,
  percentile_cont(0.25) WITHIN GROUP (ORDER BY value) AS q1,
  percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS q3,
  CASE WHEN sum(n) > 0 THEN sum(value) / sum(n) ELSE 0 END AS per_uttag
FROM wv_long GROUP BY entity_kind, peer_group, subject, measure

-- step: wv_mad view
SELECT s.entity_kind, s.peer_group, s.subject, s.measure,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(l.value - s.med)) AS mad
FROM wv_long l JOIN wv_stats s
  ON l.entity_kind = s.entity_kind AND l.peer_group = s.peer_group AND l.subject = s.subject
  AND l.measure = s.measure
GROUP BY s.entity_kind, s.peer_group, s.subject, s.measure

-- The spread is never below {floor_uttag} uttag's worth of the measure (at the peers' typical
-- DDD and cost per uttag), nor below {relative_floor} × the median: list size and part time alone
-- make such differences ordinary. Counts also get the Poisson spread sqrt(median).
-- step: wv_scored view
SELECT l.entity_kind, l.entity_code, l.peer_group, l.subject, l.measure, l.value, l.n, l.ddd, l.cost,
  s.peer_n,
  (l.value - s.med) / greatest(1.4826 * m.mad, (s.q3 - s.q1) / 1.349, {relative_floor} * s.med,
    CASE WHEN l.measure = 'uttag' THEN greatest({floor_uttag}, sqrt(s.med))
      ELSE {floor_uttag} * s.per_uttag END) AS score
FROM wv_long l
JOIN wv_stats s ON l.entity_kind = s.entity_kind AND l.peer_group = s.peer_group
  AND l.subject = s.subject AND l.measure = s.measure
JOIN wv_mad m ON l.entity_kind = m.entity_kind AND l.peer_group = m.peer_group
  AND l.subject = m.subject AND l.measure = m.measure
WHERE l.n > 0

-- step: wv_flagged table
SELECT entity_kind, entity_code, peer_group, subject, measure, value, n, ddd, cost, peer_n, score
FROM (
  SELECT *, row_number() OVER (PARTITION BY entity_kind, entity_code, subject
    ORDER BY score DESC, measure) AS rn
  FROM wv_scored
) t
WHERE rn = 1 AND score >= {min_score} AND peer_n >= {min_peers}

-- The explanation shows the other peers' median and 99th percentile (the entity left out).
-- step: flags_watched_volume view
SELECT 'watched_volume' AS indicator, f.entity_kind, f.entity_code, f.subject, f.measure, f.peer_group,
  f.value, f.peer_n,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY l.value) AS med,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY l.value) AS p99,
  f.score, f.n AS aux1, f.ddd AS aux2, f.cost AS aux3
FROM wv_flagged f
JOIN wv_long l ON l.entity_kind = f.entity_kind AND l.peer_group = f.peer_group
  AND l.subject = f.subject AND l.measure = f.measure AND l.entity_code <> f.entity_code
GROUP BY f.entity_kind, f.entity_code, f.subject, f.measure, f.peer_group, f.value, f.peer_n, f.score,
  f.n, f.ddd, f.cost
