-- no_personnummer: every prescriber without a Swedish personnummer or samordningsnummer who
-- prescribed watched substances, with the robust score of that volume among their peers (all
-- prescribers of the same peer group, zeros included). Listed whatever the score: the seed asks
-- for these prescribers and their volumes; the score decides how high they rank.

-- step: np_values table
SELECT p.prescriber AS entity_code, p.peer_group, p.has_pnr,
  CAST(coalesce(w.n, 0) AS DOUBLE) AS value,
  CAST(coalesce(w.ddd, 0) AS DOUBLE) AS ddd, CAST(coalesce(w.cost, 0) AS DOUBLE) AS cost
FROM presc p
LEFT JOIN (SELECT prescriber, sum(n) AS n, sum(ddd) AS ddd, sum(cost) AS cost FROM aggw GROUP BY prescriber) w
  ON p.prescriber = w.prescriber

-- step: np_stats table
SELECT peer_group, count(*) AS peer_n,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med,
  percentile_cont(0.25) WITHIN GROUP (ORDER BY value) AS q1,
  percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS q3,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY value) AS p99
FROM np_values GROUP BY peer_group

-- step: np_mad view
SELECT s.peer_group, percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v.value - s.med)) AS mad
FROM np_values v JOIN np_stats s ON v.peer_group = s.peer_group
GROUP BY s.peer_group

-- step: flags_no_personnummer view
SELECT 'no_personnummer' AS indicator, 'prescriber' AS entity_kind, v.entity_code,
  'watched' AS subject, 'uttag' AS measure, v.peer_group, v.value, s.peer_n, s.med, s.p99,
  (v.value - s.med) / greatest(1.4826 * m.mad, (s.q3 - s.q1) / 1.349, {relative_floor} * s.med,
    sqrt(s.med), {floor_uttag}) AS score,
  v.ddd AS aux1, v.cost AS aux2, CAST(NULL AS DOUBLE) AS aux3
FROM np_values v
JOIN np_stats s ON v.peer_group = s.peer_group
JOIN np_mad m ON v.peer_group = m.peer_group
WHERE v.has_pnr = 0 AND v.value > 0
