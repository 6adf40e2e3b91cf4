"""The daily rollup: `metrics_rollup_daily`, kept equal to the hourly cells summed per UTC day by
triggers on `metrics_rollup_hourly`, and filled from the hourly cells already there.

The trigger SQL is frozen here as `metrics.rollups.sql` generated it when this migration was written
(a migration never imports project code). A change to the triggers is a new migration."""

from django.db import migrations, models

TRIGGERS_CREATE = {'postgresql': ['CREATE OR REPLACE FUNCTION metrics_rollup_daily_on_insert() RETURNS trigger LANGUAGE '
                'plpgsql AS $$\n'
                'BEGIN\n'
                'INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, task_type, '
                'model, provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, '
                'tokens_in, tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, '
                'latency_b1, latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, '
                'latency_b8, latency_b9, latency_b10) SELECT day_start, policy_id, policy_version, route, '
                'task_type, model, provider, tier, outcome, sum(count), sum(requests), sum(escalations), '
                'sum(cost_usd), sum(unpriced), sum(tokens_in), sum(tokens_out), sum(confidence_sum), '
                'sum(confidence_count), sum(latency_sum_ms), sum(latency_b0), sum(latency_b1), '
                'sum(latency_b2), sum(latency_b3), sum(latency_b4), sum(latency_b5), sum(latency_b6), '
                'sum(latency_b7), sum(latency_b8), sum(latency_b9), sum(latency_b10) FROM (SELECT '
                "date_trunc('day', c.hour, 'UTC') AS day_start, policy_id, policy_version, route, task_type, "
                'model, provider, tier, outcome, c.count AS count, c.requests AS requests, c.escalations AS '
                'escalations, c.cost_usd AS cost_usd, c.unpriced AS unpriced, c.tokens_in AS tokens_in, '
                'c.tokens_out AS tokens_out, c.confidence_sum AS confidence_sum, c.confidence_count AS '
                'confidence_count, c.latency_sum_ms AS latency_sum_ms, c.latency_b0 AS latency_b0, '
                'c.latency_b1 AS latency_b1, c.latency_b2 AS latency_b2, c.latency_b3 AS latency_b3, '
                'c.latency_b4 AS latency_b4, c.latency_b5 AS latency_b5, c.latency_b6 AS latency_b6, '
                'c.latency_b7 AS latency_b7, c.latency_b8 AS latency_b8, c.latency_b9 AS latency_b9, '
                'c.latency_b10 AS latency_b10 FROM new_cells AS c) AS changes GROUP BY day_start, policy_id, '
                'policy_version, route, task_type, model, provider, tier, outcome ORDER BY day_start, '
                'policy_id, policy_version, route, task_type, model, provider, tier, outcome ON CONFLICT '
                '(day_start, policy_id, policy_version, route, task_type, model, provider, tier, outcome) DO '
                'UPDATE SET count = metrics_rollup_daily.count + excluded.count, requests = '
                'metrics_rollup_daily.requests + excluded.requests, escalations = '
                'metrics_rollup_daily.escalations + excluded.escalations, cost_usd = '
                'metrics_rollup_daily.cost_usd + excluded.cost_usd, unpriced = metrics_rollup_daily.unpriced '
                '+ excluded.unpriced, tokens_in = metrics_rollup_daily.tokens_in + excluded.tokens_in, '
                'tokens_out = metrics_rollup_daily.tokens_out + excluded.tokens_out, confidence_sum = '
                'metrics_rollup_daily.confidence_sum + excluded.confidence_sum, confidence_count = '
                'metrics_rollup_daily.confidence_count + excluded.confidence_count, latency_sum_ms = '
                'metrics_rollup_daily.latency_sum_ms + excluded.latency_sum_ms, latency_b0 = '
                'metrics_rollup_daily.latency_b0 + excluded.latency_b0, latency_b1 = '
                'metrics_rollup_daily.latency_b1 + excluded.latency_b1, latency_b2 = '
                'metrics_rollup_daily.latency_b2 + excluded.latency_b2, latency_b3 = '
                'metrics_rollup_daily.latency_b3 + excluded.latency_b3, latency_b4 = '
                'metrics_rollup_daily.latency_b4 + excluded.latency_b4, latency_b5 = '
                'metrics_rollup_daily.latency_b5 + excluded.latency_b5, latency_b6 = '
                'metrics_rollup_daily.latency_b6 + excluded.latency_b6, latency_b7 = '
                'metrics_rollup_daily.latency_b7 + excluded.latency_b7, latency_b8 = '
                'metrics_rollup_daily.latency_b8 + excluded.latency_b8, latency_b9 = '
                'metrics_rollup_daily.latency_b9 + excluded.latency_b9, latency_b10 = '
                'metrics_rollup_daily.latency_b10 + excluded.latency_b10;\n'
                'RETURN NULL;\n'
                'END\n'
                '$$',
                'CREATE TRIGGER metrics_rollup_daily_on_insert AFTER INSERT ON metrics_rollup_hourly '
                'REFERENCING NEW TABLE AS new_cells FOR EACH STATEMENT EXECUTE FUNCTION '
                'metrics_rollup_daily_on_insert()',
                'CREATE OR REPLACE FUNCTION metrics_rollup_daily_on_update() RETURNS trigger LANGUAGE '
                'plpgsql AS $$\n'
                'BEGIN\n'
                'INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, task_type, '
                'model, provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, '
                'tokens_in, tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, '
                'latency_b1, latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, '
                'latency_b8, latency_b9, latency_b10) SELECT day_start, policy_id, policy_version, route, '
                'task_type, model, provider, tier, outcome, sum(count), sum(requests), sum(escalations), '
                'sum(cost_usd), sum(unpriced), sum(tokens_in), sum(tokens_out), sum(confidence_sum), '
                'sum(confidence_count), sum(latency_sum_ms), sum(latency_b0), sum(latency_b1), '
                'sum(latency_b2), sum(latency_b3), sum(latency_b4), sum(latency_b5), sum(latency_b6), '
                'sum(latency_b7), sum(latency_b8), sum(latency_b9), sum(latency_b10) FROM (SELECT '
                "date_trunc('day', c.hour, 'UTC') AS day_start, policy_id, policy_version, route, task_type, "
                'model, provider, tier, outcome, c.count AS count, c.requests AS requests, c.escalations AS '
                'escalations, c.cost_usd AS cost_usd, c.unpriced AS unpriced, c.tokens_in AS tokens_in, '
                'c.tokens_out AS tokens_out, c.confidence_sum AS confidence_sum, c.confidence_count AS '
                'confidence_count, c.latency_sum_ms AS latency_sum_ms, c.latency_b0 AS latency_b0, '
                'c.latency_b1 AS latency_b1, c.latency_b2 AS latency_b2, c.latency_b3 AS latency_b3, '
                'c.latency_b4 AS latency_b4, c.latency_b5 AS latency_b5, c.latency_b6 AS latency_b6, '
                'c.latency_b7 AS latency_b7, c.latency_b8 AS latency_b8, c.latency_b9 AS latency_b9, '
                "c.latency_b10 AS latency_b10 FROM new_cells AS c UNION ALL SELECT date_trunc('day', c.hour, "
                "'UTC') AS day_start, policy_id, policy_version, route, task_type, model, provider, tier, "
                'outcome, -c.count AS count, -c.requests AS requests, -c.escalations AS escalations, '
                '-c.cost_usd AS cost_usd, -c.unpriced AS unpriced, -c.tokens_in AS tokens_in, -c.tokens_out '
                'AS tokens_out, -c.confidence_sum AS confidence_sum, -c.confidence_count AS '
                'confidence_count, -c.latency_sum_ms AS latency_sum_ms, -c.latency_b0 AS latency_b0, '
                '-c.latency_b1 AS latency_b1, -c.latency_b2 AS latency_b2, -c.latency_b3 AS latency_b3, '
                '-c.latency_b4 AS latency_b4, -c.latency_b5 AS latency_b5, -c.latency_b6 AS latency_b6, '
                '-c.latency_b7 AS latency_b7, -c.latency_b8 AS latency_b8, -c.latency_b9 AS latency_b9, '
                '-c.latency_b10 AS latency_b10 FROM old_cells AS c) AS changes GROUP BY day_start, '
                'policy_id, policy_version, route, task_type, model, provider, tier, outcome ORDER BY '
                'day_start, policy_id, policy_version, route, task_type, model, provider, tier, outcome ON '
                'CONFLICT (day_start, policy_id, policy_version, route, task_type, model, provider, tier, '
                'outcome) DO UPDATE SET count = metrics_rollup_daily.count + excluded.count, requests = '
                'metrics_rollup_daily.requests + excluded.requests, escalations = '
                'metrics_rollup_daily.escalations + excluded.escalations, cost_usd = '
                'metrics_rollup_daily.cost_usd + excluded.cost_usd, unpriced = metrics_rollup_daily.unpriced '
                '+ excluded.unpriced, tokens_in = metrics_rollup_daily.tokens_in + excluded.tokens_in, '
                'tokens_out = metrics_rollup_daily.tokens_out + excluded.tokens_out, confidence_sum = '
                'metrics_rollup_daily.confidence_sum + excluded.confidence_sum, confidence_count = '
                'metrics_rollup_daily.confidence_count + excluded.confidence_count, latency_sum_ms = '
                'metrics_rollup_daily.latency_sum_ms + excluded.latency_sum_ms, latency_b0 = '
                'metrics_rollup_daily.latency_b0 + excluded.latency_b0, latency_b1 = '
                'metrics_rollup_daily.latency_b1 + excluded.latency_b1, latency_b2 = '
                'metrics_rollup_daily.latency_b2 + excluded.latency_b2, latency_b3 = '
                'metrics_rollup_daily.latency_b3 + excluded.latency_b3, latency_b4 = '
                'metrics_rollup_daily.latency_b4 + excluded.latency_b4, latency_b5 = '
                'metrics_rollup_daily.latency_b5 + excluded.latency_b5, latency_b6 = '
                'metrics_rollup_daily.latency_b6 + excluded.latency_b6, latency_b7 = '
                'metrics_rollup_daily.latency_b7 + excluded.latency_b7, latency_b8 = '
                'metrics_rollup_daily.latency_b8 + excluded.latency_b8, latency_b9 = '
                'metrics_rollup_daily.latency_b9 + excluded.latency_b9, latency_b10 = '
                'metrics_rollup_daily.latency_b10 + excluded.latency_b10;\n'
                '    DELETE FROM metrics_rollup_daily AS d\n'
                "    USING (SELECT DISTINCT date_trunc('day', hour, 'UTC') AS day_start, policy_id, "
                'policy_version, route, task_type, model, provider, tier, outcome FROM old_cells) AS o\n'
                '    WHERE d.count = 0 AND d.day_start = o.day_start AND d.policy_id = o.policy_id AND '
                'd.policy_version = o.policy_version AND d.route = o.route AND d.task_type = o.task_type AND '
                'd.model = o.model AND d.provider = o.provider AND d.tier = o.tier AND d.outcome = '
                'o.outcome\n'
                '      AND NOT EXISTS (SELECT FROM metrics_rollup_hourly AS h\n'
                "                      WHERE h.hour >= o.day_start AND h.hour < o.day_start + interval '1 "
                "day'\n"
                '                        AND h.policy_id = o.policy_id AND h.policy_version = '
                'o.policy_version AND h.route = o.route AND h.task_type = o.task_type AND h.model = o.model '
                'AND h.provider = o.provider AND h.tier = o.tier AND h.outcome = o.outcome);\n'
                'RETURN NULL;\n'
                'END\n'
                '$$',
                'CREATE TRIGGER metrics_rollup_daily_on_update AFTER UPDATE ON metrics_rollup_hourly '
                'REFERENCING OLD TABLE AS old_cells NEW TABLE AS new_cells FOR EACH STATEMENT EXECUTE '
                'FUNCTION metrics_rollup_daily_on_update()',
                'CREATE OR REPLACE FUNCTION metrics_rollup_daily_on_delete() RETURNS trigger LANGUAGE '
                'plpgsql AS $$\n'
                'BEGIN\n'
                'INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, task_type, '
                'model, provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, '
                'tokens_in, tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, '
                'latency_b1, latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, '
                'latency_b8, latency_b9, latency_b10) SELECT day_start, policy_id, policy_version, route, '
                'task_type, model, provider, tier, outcome, sum(count), sum(requests), sum(escalations), '
                'sum(cost_usd), sum(unpriced), sum(tokens_in), sum(tokens_out), sum(confidence_sum), '
                'sum(confidence_count), sum(latency_sum_ms), sum(latency_b0), sum(latency_b1), '
                'sum(latency_b2), sum(latency_b3), sum(latency_b4), sum(latency_b5), sum(latency_b6), '
                'sum(latency_b7), sum(latency_b8), sum(latency_b9), sum(latency_b10) FROM (SELECT '
                "date_trunc('day', c.hour, 'UTC') AS day_start, policy_id, policy_version, route, task_type, "
                'model, provider, tier, outcome, -c.count AS count, -c.requests AS requests, -c.escalations '
                'AS escalations, -c.cost_usd AS cost_usd, -c.unpriced AS unpriced, -c.tokens_in AS '
                'tokens_in, -c.tokens_out AS tokens_out, -c.confidence_sum AS confidence_sum, '
                '-c.confidence_count AS confidence_count, -c.latency_sum_ms AS latency_sum_ms, -c.latency_b0 '
                'AS latency_b0, -c.latency_b1 AS latency_b1, -c.latency_b2 AS latency_b2, -c.latency_b3 AS '
                'latency_b3, -c.latency_b4 AS latency_b4, -c.latency_b5 AS latency_b5, -c.latency_b6 AS '
                'latency_b6, -c.latency_b7 AS latency_b7, -c.latency_b8 AS latency_b8, -c.latency_b9 AS '
                'latency_b9, -c.latency_b10 AS latency_b10 FROM old_cells AS c) AS changes GROUP BY '
                'day_start, policy_id, policy_version, route, task_type, model, provider, tier, outcome '
                'ORDER BY day_start, policy_id, policy_version, route, task_type, model, provider, tier, '
                'outcome ON CONFLICT (day_start, policy_id, policy_version, route, task_type, model, '
                'provider, tier, outcome) DO UPDATE SET count = metrics_rollup_daily.count + excluded.count, '
                'requests = metrics_rollup_daily.requests + excluded.requests, escalations = '
                'metrics_rollup_daily.escalations + excluded.escalations, cost_usd = '
                'metrics_rollup_daily.cost_usd + excluded.cost_usd, unpriced = metrics_rollup_daily.unpriced '
                '+ excluded.unpriced, tokens_in = metrics_rollup_daily.tokens_in + excluded.tokens_in, '
                'tokens_out = metrics_rollup_daily.tokens_out + excluded.tokens_out, confidence_sum = '
                'metrics_rollup_daily.confidence_sum + excluded.confidence_sum, confidence_count = '
                'metrics_rollup_daily.confidence_count + excluded.confidence_count, latency_sum_ms = '
                'metrics_rollup_daily.latency_sum_ms + excluded.latency_sum_ms, latency_b0 = '
                'metrics_rollup_daily.latency_b0 + excluded.latency_b0, latency_b1 = '
                'metrics_rollup_daily.latency_b1 + excluded.latency_b1, latency_b2 = '
                'metrics_rollup_daily.latency_b2 + excluded.latency_b2, latency_b3 = '
                'metrics_rollup_daily.latency_b3 + excluded.latency_b3, latency_b4 = '
                'metrics_rollup_daily.latency_b4 + excluded.latency_b4, latency_b5 = '
                'metrics_rollup_daily.latency_b5 + excluded.latency_b5, latency_b6 = '
                'metrics_rollup_daily.latency_b6 + excluded.latency_b6, latency_b7 = '
                'metrics_rollup_daily.latency_b7 + excluded.latency_b7, latency_b8 = '
                'metrics_rollup_daily.latency_b8 + excluded.latency_b8, latency_b9 = '
                'metrics_rollup_daily.latency_b9 + excluded.latency_b9, latency_b10 = '
                'metrics_rollup_daily.latency_b10 + excluded.latency_b10;\n'
                '    DELETE FROM metrics_rollup_daily AS d\n'
                "    USING (SELECT DISTINCT date_trunc('day', hour, 'UTC') AS day_start, policy_id, "
                'policy_version, route, task_type, model, provider, tier, outcome FROM old_cells) AS o\n'
                '    WHERE d.count = 0 AND d.day_start = o.day_start AND d.policy_id = o.policy_id AND '
                'd.policy_version = o.policy_version AND d.route = o.route AND d.task_type = o.task_type AND '
                'd.model = o.model AND d.provider = o.provider AND d.tier = o.tier AND d.outcome = '
                'o.outcome\n'
                '      AND NOT EXISTS (SELECT FROM metrics_rollup_hourly AS h\n'
                "                      WHERE h.hour >= o.day_start AND h.hour < o.day_start + interval '1 "
                "day'\n"
                '                        AND h.policy_id = o.policy_id AND h.policy_version = '
                'o.policy_version AND h.route = o.route AND h.task_type = o.task_type AND h.model = o.model '
                'AND h.provider = o.provider AND h.tier = o.tier AND h.outcome = o.outcome);\n'
                'RETURN NULL;\n'
                'END\n'
                '$$',
                'CREATE TRIGGER metrics_rollup_daily_on_delete AFTER DELETE ON metrics_rollup_hourly '
                'REFERENCING OLD TABLE AS old_cells FOR EACH STATEMENT EXECUTE FUNCTION '
                'metrics_rollup_daily_on_delete()'],
 'sqlite': ['CREATE TRIGGER metrics_rollup_daily_on_insert AFTER INSERT ON metrics_rollup_hourly FOR EACH '
            'ROW BEGIN INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, '
            'task_type, model, provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, '
            'tokens_in, tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, '
            'latency_b1, latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, latency_b8, '
            "latency_b9, latency_b10) VALUES (strftime('%Y-%m-%d 00:00:00', NEW.hour), NEW.policy_id, "
            'NEW.policy_version, NEW.route, NEW.task_type, NEW.model, NEW.provider, NEW.tier, NEW.outcome, '
            'NEW.count, NEW.requests, NEW.escalations, NEW.cost_usd, NEW.unpriced, NEW.tokens_in, '
            'NEW.tokens_out, NEW.confidence_sum, NEW.confidence_count, NEW.latency_sum_ms, NEW.latency_b0, '
            'NEW.latency_b1, NEW.latency_b2, NEW.latency_b3, NEW.latency_b4, NEW.latency_b5, NEW.latency_b6, '
            'NEW.latency_b7, NEW.latency_b8, NEW.latency_b9, NEW.latency_b10) ON CONFLICT (day_start, '
            'policy_id, policy_version, route, task_type, model, provider, tier, outcome) DO UPDATE SET '
            'count = metrics_rollup_daily.count + excluded.count, requests = metrics_rollup_daily.requests + '
            'excluded.requests, escalations = metrics_rollup_daily.escalations + excluded.escalations, '
            'cost_usd = metrics_rollup_daily.cost_usd + excluded.cost_usd, unpriced = '
            'metrics_rollup_daily.unpriced + excluded.unpriced, tokens_in = metrics_rollup_daily.tokens_in + '
            'excluded.tokens_in, tokens_out = metrics_rollup_daily.tokens_out + excluded.tokens_out, '
            'confidence_sum = metrics_rollup_daily.confidence_sum + excluded.confidence_sum, '
            'confidence_count = metrics_rollup_daily.confidence_count + excluded.confidence_count, '
            'latency_sum_ms = metrics_rollup_daily.latency_sum_ms + excluded.latency_sum_ms, latency_b0 = '
            'metrics_rollup_daily.latency_b0 + excluded.latency_b0, latency_b1 = '
            'metrics_rollup_daily.latency_b1 + excluded.latency_b1, latency_b2 = '
            'metrics_rollup_daily.latency_b2 + excluded.latency_b2, latency_b3 = '
            'metrics_rollup_daily.latency_b3 + excluded.latency_b3, latency_b4 = '
            'metrics_rollup_daily.latency_b4 + excluded.latency_b4, latency_b5 = '
            'metrics_rollup_daily.latency_b5 + excluded.latency_b5, latency_b6 = '
            'metrics_rollup_daily.latency_b6 + excluded.latency_b6, latency_b7 = '
            'metrics_rollup_daily.latency_b7 + excluded.latency_b7, latency_b8 = '
            'metrics_rollup_daily.latency_b8 + excluded.latency_b8, latency_b9 = '
            'metrics_rollup_daily.latency_b9 + excluded.latency_b9, latency_b10 = '
            'metrics_rollup_daily.latency_b10 + excluded.latency_b10; END',
            'CREATE TRIGGER metrics_rollup_daily_on_update AFTER UPDATE ON metrics_rollup_hourly FOR EACH '
            'ROW BEGIN INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, '
            'task_type, model, provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, '
            'tokens_in, tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, '
            'latency_b1, latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, latency_b8, '
            "latency_b9, latency_b10) VALUES (strftime('%Y-%m-%d 00:00:00', NEW.hour), NEW.policy_id, "
            'NEW.policy_version, NEW.route, NEW.task_type, NEW.model, NEW.provider, NEW.tier, NEW.outcome, '
            'NEW.count, NEW.requests, NEW.escalations, NEW.cost_usd, NEW.unpriced, NEW.tokens_in, '
            'NEW.tokens_out, NEW.confidence_sum, NEW.confidence_count, NEW.latency_sum_ms, NEW.latency_b0, '
            'NEW.latency_b1, NEW.latency_b2, NEW.latency_b3, NEW.latency_b4, NEW.latency_b5, NEW.latency_b6, '
            'NEW.latency_b7, NEW.latency_b8, NEW.latency_b9, NEW.latency_b10) ON CONFLICT (day_start, '
            'policy_id, policy_version, route, task_type, model, provider, tier, outcome) DO UPDATE SET '
            'count = metrics_rollup_daily.count + excluded.count, requests = metrics_rollup_daily.requests + '
            'excluded.requests, escalations = metrics_rollup_daily.escalations + excluded.escalations, '
            'cost_usd = metrics_rollup_daily.cost_usd + excluded.cost_usd, unpriced = '
            'metrics_rollup_daily.unpriced + excluded.unpriced, tokens_in = metrics_rollup_daily.tokens_in + '
            'excluded.tokens_in, tokens_out = metrics_rollup_daily.tokens_out + excluded.tokens_out, '
            'confidence_sum = metrics_rollup_daily.confidence_sum + excluded.confidence_sum, '
            'confidence_count = metrics_rollup_daily.confidence_count + excluded.confidence_count, '
            'latency_sum_ms = metrics_rollup_daily.latency_sum_ms + excluded.latency_sum_ms, latency_b0 = '
            'metrics_rollup_daily.latency_b0 + excluded.latency_b0, latency_b1 = '
            'metrics_rollup_daily.latency_b1 + excluded.latency_b1, latency_b2 = '
            'metrics_rollup_daily.latency_b2 + excluded.latency_b2, latency_b3 = '
            'metrics_rollup_daily.latency_b3 + excluded.latency_b3, latency_b4 = '
            'metrics_rollup_daily.latency_b4 + excluded.latency_b4, latency_b5 = '
            'metrics_rollup_daily.latency_b5 + excluded.latency_b5, latency_b6 = '
            'metrics_rollup_daily.latency_b6 + excluded.latency_b6, latency_b7 = '
            'metrics_rollup_daily.latency_b7 + excluded.latency_b7, latency_b8 = '
            'metrics_rollup_daily.latency_b8 + excluded.latency_b8, latency_b9 = '
            'metrics_rollup_daily.latency_b9 + excluded.latency_b9, latency_b10 = '
            'metrics_rollup_daily.latency_b10 + excluded.latency_b10;INSERT INTO metrics_rollup_daily '
            '(day_start, policy_id, policy_version, route, task_type, model, provider, tier, outcome, count, '
            'requests, escalations, cost_usd, unpriced, tokens_in, tokens_out, confidence_sum, '
            'confidence_count, latency_sum_ms, latency_b0, latency_b1, latency_b2, latency_b3, latency_b4, '
            'latency_b5, latency_b6, latency_b7, latency_b8, latency_b9, latency_b10) VALUES '
            "(strftime('%Y-%m-%d 00:00:00', OLD.hour), OLD.policy_id, OLD.policy_version, OLD.route, "
            'OLD.task_type, OLD.model, OLD.provider, OLD.tier, OLD.outcome, -OLD.count, -OLD.requests, '
            '-OLD.escalations, -OLD.cost_usd, -OLD.unpriced, -OLD.tokens_in, -OLD.tokens_out, '
            '-OLD.confidence_sum, -OLD.confidence_count, -OLD.latency_sum_ms, -OLD.latency_b0, '
            '-OLD.latency_b1, -OLD.latency_b2, -OLD.latency_b3, -OLD.latency_b4, -OLD.latency_b5, '
            '-OLD.latency_b6, -OLD.latency_b7, -OLD.latency_b8, -OLD.latency_b9, -OLD.latency_b10) ON '
            'CONFLICT (day_start, policy_id, policy_version, route, task_type, model, provider, tier, '
            'outcome) DO UPDATE SET count = metrics_rollup_daily.count + excluded.count, requests = '
            'metrics_rollup_daily.requests + excluded.requests, escalations = '
            'metrics_rollup_daily.escalations + excluded.escalations, cost_usd = '
            'metrics_rollup_daily.cost_usd + excluded.cost_usd, unpriced = metrics_rollup_daily.unpriced + '
            'excluded.unpriced, tokens_in = metrics_rollup_daily.tokens_in + excluded.tokens_in, tokens_out '
            '= metrics_rollup_daily.tokens_out + excluded.tokens_out, confidence_sum = '
            'metrics_rollup_daily.confidence_sum + excluded.confidence_sum, confidence_count = '
            'metrics_rollup_daily.confidence_count + excluded.confidence_count, latency_sum_ms = '
            'metrics_rollup_daily.latency_sum_ms + excluded.latency_sum_ms, latency_b0 = '
            'metrics_rollup_daily.latency_b0 + excluded.latency_b0, latency_b1 = '
            'metrics_rollup_daily.latency_b1 + excluded.latency_b1, latency_b2 = '
            'metrics_rollup_daily.latency_b2 + excluded.latency_b2, latency_b3 = '
            'metrics_rollup_daily.latency_b3 + excluded.latency_b3, latency_b4 = '
            'metrics_rollup_daily.latency_b4 + excluded.latency_b4, latency_b5 = '
            'metrics_rollup_daily.latency_b5 + excluded.latency_b5, latency_b6 = '
            'metrics_rollup_daily.latency_b6 + excluded.latency_b6, latency_b7 = '
            'metrics_rollup_daily.latency_b7 + excluded.latency_b7, latency_b8 = '
            'metrics_rollup_daily.latency_b8 + excluded.latency_b8, latency_b9 = '
            'metrics_rollup_daily.latency_b9 + excluded.latency_b9, latency_b10 = '
            'metrics_rollup_daily.latency_b10 + excluded.latency_b10;\n'
            '    DELETE FROM metrics_rollup_daily\n'
            "    WHERE count = 0 AND day_start = strftime('%Y-%m-%d 00:00:00', OLD.hour)\n"
            '      AND policy_id = OLD.policy_id AND policy_version = OLD.policy_version AND route = '
            'OLD.route AND task_type = OLD.task_type AND model = OLD.model AND provider = OLD.provider AND '
            'tier = OLD.tier AND outcome = OLD.outcome\n'
            '      AND NOT EXISTS (SELECT 1 FROM metrics_rollup_hourly AS h\n'
            "                      WHERE h.hour >= strftime('%Y-%m-%d 00:00:00', OLD.hour)\n"
            "                        AND h.hour < strftime('%Y-%m-%d 00:00:00', OLD.hour, '+1 day')\n"
            '                        AND h.policy_id = OLD.policy_id AND h.policy_version = '
            'OLD.policy_version AND h.route = OLD.route AND h.task_type = OLD.task_type AND h.model = '
            'OLD.model AND h.provider = OLD.provider AND h.tier = OLD.tier AND h.outcome = OLD.outcome); END',
            'CREATE TRIGGER metrics_rollup_daily_on_delete AFTER DELETE ON metrics_rollup_hourly FOR EACH '
            'ROW BEGIN INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, '
            'task_type, model, provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, '
            'tokens_in, tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, '
            'latency_b1, latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, latency_b8, '
            "latency_b9, latency_b10) VALUES (strftime('%Y-%m-%d 00:00:00', OLD.hour), OLD.policy_id, "
            'OLD.policy_version, OLD.route, OLD.task_type, OLD.model, OLD.provider, OLD.tier, OLD.outcome, '
            '-OLD.count, -OLD.requests, -OLD.escalations, -OLD.cost_usd, -OLD.unpriced, -OLD.tokens_in, '
            '-OLD.tokens_out, -OLD.confidence_sum, -OLD.confidence_count, -OLD.latency_sum_ms, '
            '-OLD.latency_b0, -OLD.latency_b1, -OLD.latency_b2, -OLD.latency_b3, -OLD.latency_b4, '
            '-OLD.latency_b5, -OLD.latency_b6, -OLD.latency_b7, -OLD.latency_b8, -OLD.latency_b9, '
            '-OLD.latency_b10) ON CONFLICT (day_start, policy_id, policy_version, route, task_type, model, '
            'provider, tier, outcome) DO UPDATE SET count = metrics_rollup_daily.count + excluded.count, '
            'requests = metrics_rollup_daily.requests + excluded.requests, escalations = '
            'metrics_rollup_daily.escalations + excluded.escalations, cost_usd = '
            'metrics_rollup_daily.cost_usd + excluded.cost_usd, unpriced = metrics_rollup_daily.unpriced + '
            'excluded.unpriced, tokens_in = metrics_rollup_daily.tokens_in + excluded.tokens_in, tokens_out '
            '= metrics_rollup_daily.tokens_out + excluded.tokens_out, confidence_sum = '
            'metrics_rollup_daily.confidence_sum + excluded.confidence_sum, confidence_count = '
            'metrics_rollup_daily.confidence_count + excluded.confidence_count, latency_sum_ms = '
            'metrics_rollup_daily.latency_sum_ms + excluded.latency_sum_ms, latency_b0 = '
            'metrics_rollup_daily.latency_b0 + excluded.latency_b0, latency_b1 = '
            'metrics_rollup_daily.latency_b1 + excluded.latency_b1, latency_b2 = '
            'metrics_rollup_daily.latency_b2 + excluded.latency_b2, latency_b3 = '
            'metrics_rollup_daily.latency_b3 + excluded.latency_b3, latency_b4 = '
            'metrics_rollup_daily.latency_b4 + excluded.latency_b4, latency_b5 = '
            'metrics_rollup_daily.latency_b5 + excluded.latency_b5, latency_b6 = '
            'metrics_rollup_daily.latency_b6 + excluded.latency_b6, latency_b7 = '
            'metrics_rollup_daily.latency_b7 + excluded.latency_b7, latency_b8 = '
            'metrics_rollup_daily.latency_b8 + excluded.latency_b8, latency_b9 = '
            'metrics_rollup_daily.latency_b9 + excluded.latency_b9, latency_b10 = '
            'metrics_rollup_daily.latency_b10 + excluded.latency_b10;\n'
            '    DELETE FROM metrics_rollup_daily\n'
            "    WHERE count = 0 AND day_start = strftime('%Y-%m-%d 00:00:00', OLD.hour)\n"
            '      AND policy_id = OLD.policy_id AND policy_version = OLD.policy_version AND route = '
            'OLD.route AND task_type = OLD.task_type AND model = OLD.model AND provider = OLD.provider AND '
            'tier = OLD.tier AND outcome = OLD.outcome\n'
            '      AND NOT EXISTS (SELECT 1 FROM metrics_rollup_hourly AS h\n'
            "                      WHERE h.hour >= strftime('%Y-%m-%d 00:00:00', OLD.hour)\n"
            "                        AND h.hour < strftime('%Y-%m-%d 00:00:00', OLD.hour, '+1 day')\n"
            '                        AND h.policy_id = OLD.policy_id AND h.policy_version = '
            'OLD.policy_version AND h.route = OLD.route AND h.task_type = OLD.task_type AND h.model = '
            'OLD.model AND h.provider = OLD.provider AND h.tier = OLD.tier AND h.outcome = OLD.outcome); '
            'END']}

BACKFILL = {'postgresql': 'INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, task_type, '
               'model, provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, tokens_in, '
               'tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, latency_b1, '
               'latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, latency_b8, '
               "latency_b9, latency_b10) SELECT date_trunc('day', hour, 'UTC'), policy_id, policy_version, "
               'route, task_type, model, provider, tier, outcome, sum(count), sum(requests), '
               'sum(escalations), sum(cost_usd), sum(unpriced), sum(tokens_in), sum(tokens_out), '
               'sum(confidence_sum), sum(confidence_count), sum(latency_sum_ms), sum(latency_b0), '
               'sum(latency_b1), sum(latency_b2), sum(latency_b3), sum(latency_b4), sum(latency_b5), '
               'sum(latency_b6), sum(latency_b7), sum(latency_b8), sum(latency_b9), sum(latency_b10) FROM '
               "metrics_rollup_hourly GROUP BY date_trunc('day', hour, 'UTC'), policy_id, policy_version, "
               'route, task_type, model, provider, tier, outcome',
 'sqlite': 'INSERT INTO metrics_rollup_daily (day_start, policy_id, policy_version, route, task_type, model, '
           'provider, tier, outcome, count, requests, escalations, cost_usd, unpriced, tokens_in, '
           'tokens_out, confidence_sum, confidence_count, latency_sum_ms, latency_b0, latency_b1, '
           'latency_b2, latency_b3, latency_b4, latency_b5, latency_b6, latency_b7, latency_b8, latency_b9, '
           "latency_b10) SELECT strftime('%Y-%m-%d 00:00:00', hour), policy_id, policy_version, route, "
           'task_type, model, provider, tier, outcome, sum(count), sum(requests), sum(escalations), '
           'sum(cost_usd), sum(unpriced), sum(tokens_in), sum(tokens_out), sum(confidence_sum), '
           'sum(confidence_count), sum(latency_sum_ms), sum(latency_b0), sum(latency_b1), sum(latency_b2), '
           'sum(latency_b3), sum(latency_b4), sum(latency_b5), sum(latency_b6), sum(latency_b7), '
           'sum(latency_b8), sum(latency_b9), sum(latency_b10) FROM metrics_rollup_hourly GROUP BY '
           "strftime('%Y-%m-%d 00:00:00', hour), policy_id, policy_version, route, task_type, model, "
           'provider, tier, outcome'}

TRIGGERS_DROP = {'postgresql': ['DROP TRIGGER IF EXISTS metrics_rollup_daily_on_insert ON metrics_rollup_hourly',
                'DROP TRIGGER IF EXISTS metrics_rollup_daily_on_update ON metrics_rollup_hourly',
                'DROP TRIGGER IF EXISTS metrics_rollup_daily_on_delete ON metrics_rollup_hourly',
                'DROP FUNCTION IF EXISTS metrics_rollup_daily_on_insert()',
                'DROP FUNCTION IF EXISTS metrics_rollup_daily_on_update()',
                'DROP FUNCTION IF EXISTS metrics_rollup_daily_on_delete()'],
 'sqlite': ['DROP TRIGGER IF EXISTS metrics_rollup_daily_on_insert',
            'DROP TRIGGER IF EXISTS metrics_rollup_daily_on_update',
            'DROP TRIGGER IF EXISTS metrics_rollup_daily_on_delete']}


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        for statement in TRIGGERS_CREATE[vendor]:
            cursor.execute(statement)
        cursor.execute(BACKFILL[vendor])


def drop_triggers(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for statement in TRIGGERS_DROP[schema_editor.connection.vendor]:
            cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0003_rollup_covering_index"),
    ]

    operations = [
        migrations.CreateModel(
            name='RollupDaily',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('policy_id', models.IntegerField()),
                ('policy_version', models.IntegerField()),
                ('route', models.CharField(max_length=200)),
                ('task_type', models.CharField(max_length=200)),
                ('model', models.CharField(max_length=255)),
                ('provider', models.CharField(max_length=100)),
                ('tier', models.SmallIntegerField()),
                ('outcome', models.CharField(max_length=20)),
                ('count', models.BigIntegerField(default=0, help_text='Decision records (attempts).')),
                ('requests', models.BigIntegerField(default=0, help_text='Records with attempt = 1.')),
                ('escalations', models.BigIntegerField(default=0, help_text='Records with escalated = true.')),
                ('cost_usd', models.DecimalField(decimal_places=15, default=0, help_text="Sum of the priced records' cost.", max_digits=30)),
                ('unpriced', models.BigIntegerField(default=0, help_text='Records with no cost (model not priced).')),
                ('tokens_in', models.BigIntegerField(default=0)),
                ('tokens_out', models.BigIntegerField(default=0)),
                ('confidence_sum', models.DecimalField(decimal_places=15, default=0, max_digits=30)),
                ('confidence_count', models.BigIntegerField(default=0)),
                ('latency_sum_ms', models.DecimalField(decimal_places=6, default=0, max_digits=30)),
                ('latency_b0', models.BigIntegerField(default=0)),
                ('latency_b1', models.BigIntegerField(default=0)),
                ('latency_b2', models.BigIntegerField(default=0)),
                ('latency_b3', models.BigIntegerField(default=0)),
                ('latency_b4', models.BigIntegerField(default=0)),
                ('latency_b5', models.BigIntegerField(default=0)),
                ('latency_b6', models.BigIntegerField(default=0)),
                ('latency_b7', models.BigIntegerField(default=0)),
                ('latency_b8', models.BigIntegerField(default=0)),
                ('latency_b9', models.BigIntegerField(default=0)),
                ('latency_b10', models.BigIntegerField(default=0)),
                ('day_start', models.DateTimeField(help_text='Start of the UTC day.')),
            ],
            options={
                'db_table': 'metrics_rollup_daily',
                'indexes': [models.Index(fields=['policy_id', 'day_start'], include=('task_type', 'cost_usd', 'count', 'requests', 'unpriced'), name='rollup_daily_policy_cost')],
                'constraints': [models.UniqueConstraint(fields=('day_start', 'policy_id', 'policy_version', 'route', 'task_type', 'model', 'provider', 'tier', 'outcome'), name='rollup_daily_cell')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
