-- rare_for_peers: a substance (ATC as given) that at most {rare_share} of the entity's peers
-- prescribe at all, learned from the data. Most peers are then at 0, so the peers' median and
-- quartiles are 0 and the robust score is the entity's uttag over the floor of {floor_uttag}.
-- A watched substance whose group already has a watched_volume flag for the same entity is not
-- flagged again here: it is the same finding.

-- step: rp_values table
SELECT 'prescriber' AS entity_kind, prescriber AS entity_code, atc, sum(n) AS n
FROM agg GROUP BY prescriber, atc
UNION ALL
SELECT 'workplace' AS entity_kind, workplace AS entity_code, atc, sum(n) AS n
FROM agg GROUP BY workplace, atc

-- step: rp_peers view
SELECT entity_kind, peer_group, count(*) AS peer_n FROM ent GROUP BY entity_kind, peer_group

-- step: rp_users view
SELECT e.entity_kind, e.peer_group, v.atc, count(*) AS users
FROM rp_values v JOIN ent e ON v.entity_kind = e.entity_kind AND v.entity_code = e.entity_code
GROUP BY e.entity_kind, e.peer_group, v.atc

-- step: rp_already table
SELECT f.entity_kind, f.entity_code, g.atc
FROM wv_flagged f JOIN atc_group g ON f.subject = g.group_code

-- step: flags_rare_for_peers view
SELECT 'rare_for_peers' AS indicator, v.entity_kind, v.entity_code, v.atc AS subject,
  'uttag' AS measure, e.peer_group, CAST(v.n AS DOUBLE) AS value, p.peer_n,
  CAST(0 AS DOUBLE) AS med, CAST(NULL AS DOUBLE) AS p99,
  CAST(v.n AS DOUBLE) / {floor_uttag} AS score,
  CAST(u.users - 1 AS DOUBLE) AS aux1, CAST(NULL AS DOUBLE) AS aux2, CAST(NULL AS DOUBLE) AS aux3
FROM rp_values v
JOIN ent e ON v.entity_kind = e.entity_kind AND v.entity_code = e.entity_code
JOIN rp_peers p ON e.entity_kind = p.entity_kind AND e.peer_group = p.peer_group
JOIN rp_users u ON e.entity_kind = u.entity_kind AND e.peer_group = u.peer_group AND v.atc = u.atc
LEFT JOIN rp_already a ON a.entity_kind = v.entity_kind AND a.entity_code = v.entity_code AND a.atc = v.atc
WHERE a.atc IS NULL
  AND p.peer_n >= {min_peers}
  AND CAST(u.users - 1 AS DOUBLE) <= {rare_share} * (p.peer_n - 1)
  AND CAST(v.n AS DOUBLE) / {floor_uttag} >= {min_score}
