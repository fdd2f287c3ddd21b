"""Checks of scripts/live-prometheus.sh against the Prometheus it runs.

Standard library only. The environment gives the Prometheus URL and the
unix times of the healthy run. `healthy` runs the first check (before the
mixed run starts), `mixed` the others.

- No alert pended or fired during the healthy run, nor in the 4 s after it.
- After the mixed run, PlanJobFailureRatioHigh and PlanLlmQuotaOrConfigError
  fire (polled with a deadline).
- Every panel query of dashboards/*.json, with Grafana's variables filled
  in, evaluates without error over the run; each returns data unless it is
  in EMPTY_BY_DESIGN, and each panel listed there really is empty (the list
  cannot go stale silently).
"""

import glob
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

PROM = os.environ["PROMETHEUS_URL"]
HEALTHY_FROM = float(os.environ["HEALTHY_FROM"])
HEALTHY_TO = float(os.environ["HEALTHY_TO"])
DEADLINE_SECONDS = 60

MUST_FIRE = ["PlanJobFailureRatioHigh", "PlanLlmQuotaOrConfigError"]

# (dashboard file, panel title, a piece of the query): why the run leaves
# it empty. Anything else must return data.
EMPTY_BY_DESIGN = {
    ("overview.json", "API responses per second by route", 'class="5xx"'):
        "the API answered no 5xx (the query keeps only routes with 5xx > 0)",
    ("overview.json", "Meal photos per minute by outcome", "plan_meal_images_total"):
        "no UNSPLASH_ACCESS_KEY: no meal_images job runs, no photo is looked up",
    ("overview.json", "Unsplash request duration p50 / p95", "0.5"):
        "no UNSPLASH_ACCESS_KEY: no Unsplash request, so the histogram has no observation",
    ("overview.json", "Unsplash request duration p50 / p95", "0.95"):
        "no UNSPLASH_ACCESS_KEY: no Unsplash request, so the histogram has no observation",
    ("overview.json", "Photo jobs waiting for the next hour", "IMAGES_RATE_LIMIT"):
        "no meal_images job, so none waited for Unsplash's hourly limit",
    ("failures.json", "Jobs reaped, leases lost, stale jobs expired", "plan_worker_leases_lost_total"):
        "no worker lost a lease (none stalled)",
    ("failures.json", "Jobs reaped, leases lost, stale jobs expired", "plan_jobs_expired_total"):
        "no job waited past STALE_PENDING_HOURS",
    ("workers.json", "Claims and releases by worker", "plan_jobs_released_total"):
        "the worker did not shut down during the run, so it gave no job back",
    ("workers.json", "Listener reconnects and leases lost", "plan_worker_leases_lost_total"):
        "no worker lost a lease (none stalled)",
    ("workers.json", "Listener reconnects and leases lost", "plan_worker_listener_reconnects_total"):
        "the LISTEN connection never dropped",
    ("failures.json", "Jobs reaped, leases lost, stale jobs expired", "plan_jobs_reaped_total"):
        "no worker died and no lease ran out, so nothing was reaped",
    ("overview.json", "API 5xx ratio", 'class="5xx"'):
        "the API answered no 5xx: the ratio is 0",
    ("overview.json", "Unsplash requests per minute", "plan_unsplash_requests_total"):
        "no UNSPLASH_ACCESS_KEY: Unsplash is never called",
    ("overview.json", "Photo jobs waiting for the next hour", "plan_jobs_queued"):
        "no meal_images job: none waits (the query is 0 by its `or vector(0)`)",
    ("llm.json", "Economy jobs postponed to off-peak per minute", "plan_jobs_postponed_total"):
        "the run's windows (LLM_OFFPEAK_WINDOWS=00:00-24:00) are off-peak all day: no job is claimed in a peak",
}


def get(path, **params):
    url = f"{PROM}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


class QueryError(Exception):
    pass


def alerts():
    return get("/api/v1/alerts")["alerts"]


def wait_for(what, condition):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE_SECONDS} s waiting for {what}")
        time.sleep(0.2)


def rules_evaluated_after(t):
    """Every rule group was evaluated at least once after unix time t."""
    groups = get("/api/v1/rules")["groups"]
    def at(g):
        # RFC 3339 with nanoseconds, which fromisoformat does not read;
        # whole seconds are enough here.
        return datetime.fromisoformat(re.sub(r"\.\d+", "", g["lastEvaluation"])).timestamp()
    return groups and all(at(g) > t for g in groups)


def check_healthy_run_fired_nothing():
    # Rules were evaluated over the whole healthy run, and past its end by
    # more than the shortened `for:`: anything pending would have fired.
    wait_for("the rules to be evaluated after the healthy run", lambda: rules_evaluated_after(HEALTHY_TO + 4))
    end = HEALTHY_TO + 4
    span = max(1, math.ceil(end - HEALTHY_FROM))
    active = get("/api/v1/query", query=f"max_over_time(ALERTS[{span}s])", time=f"{end:.3f}")["result"]
    assert not active, f"alerts pended or fired in the healthy run: {[r['metric'] for r in active]}"
    return span


def check_alerts_fire():
    def firing():
        names = {a["labels"]["alertname"] for a in alerts() if a["state"] == "firing"}
        return names if all(n in names for n in MUST_FIRE) else None
    names = wait_for(f"{', '.join(MUST_FIRE)} to fire", firing)
    return sorted(names)


def variables(dashboard):
    """Grafana's variables as this check fills them: every label value
    (regex .*), constants and custom values as their current value."""
    values = {"__rate_interval": "10s", "__interval": "1s", "__range": "5m"}
    for v in dashboard.get("templating", {}).get("list", []):
        name = v["name"]
        if v.get("type") == "query":
            values[name] = ".*"
        elif v.get("type") == "datasource":
            continue
        else:
            current = v.get("current", {}).get("value") or v.get("query")
            values[name] = str(current)
    return values


def label_values_query(q):
    """label_values(metric, label) of a variable, through the labels API."""
    inner = q[len("label_values("):-1]
    metric, label = [s.strip() for s in inner.rsplit(",", 1)]
    return get(f"/api/v1/label/{label}/values", **{"match[]": metric})


def fill(expr, values):
    # Longest names first, so that $kind does not eat $kind_x.
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
    return expr


def panels(items):
    for p in items:
        if p.get("type") == "row":
            yield from panels(p.get("panels", []))
        else:
            yield p


def classify(result):
    """"data" (some finite value other than 0), "zero" (only zeros: the
    series exist, registered at 0, and nothing happened) or "none"."""
    seen = False
    for series in result:
        for _, v in series.get("values", []):
            if v in ("NaN", "+Inf", "-Inf"):
                continue
            seen = True
            if float(v) != 0:
                return "data"
    return "zero" if seen else "none"


def check_dashboards():
    start, end = HEALTHY_FROM - 5, time.time()
    empty, with_data, errors, variables_checked = [], 0, [], 0
    unmatched = set(EMPTY_BY_DESIGN)
    for path in sorted(glob.glob("dashboards/*.json")):
        file = os.path.basename(path)
        d = json.load(open(path))
        values = variables(d)
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if v.get("type") == "query" and q and q.startswith("label_values("):
                variables_checked += 1
                if not label_values_query(q):
                    errors.append(f"{file}: variable ${v['name']} ({q}) has no values")
        for p in panels(d.get("panels", [])):
            title = p.get("title")
            for t in p.get("targets", []):
                raw = t.get("expr")
                if not raw:
                    continue
                expr = fill(raw, values)
                key = next((k for k in EMPTY_BY_DESIGN
                            if k[0] == file and k[1] == title and k[2] in raw), None)
                unmatched.discard(key)
                try:
                    data = get("/api/v1/query_range", query=expr, start=f"{start:.3f}",
                               end=f"{end:.3f}", step="1")
                except QueryError as e:
                    errors.append(f"{file} / {title}: {expr}: {e}")
                    continue
                kind = classify(data["result"])
                if kind == "data" and key:
                    errors.append(f"{file} / {title}: listed as empty by design "
                                  f"({EMPTY_BY_DESIGN[key]}) but returned data: {expr}")
                elif kind == "data":
                    with_data += 1
                elif key:
                    empty.append((file, title, kind, EMPTY_BY_DESIGN[key]))
                else:
                    errors.append(f"{file} / {title}: {'only zeros' if kind == 'zero' else 'no data'}: {expr}")
    for key in sorted(unmatched):
        errors.append(f"EMPTY_BY_DESIGN lists a query no dashboard has: {key}")
    return with_data, empty, errors, variables_checked


def main():
    t = time.monotonic()
    if sys.argv[1:] == ["healthy"]:
        span = check_healthy_run_fired_nothing()
        print(f"live_prometheus.py: ok  no alert pended or fired in the healthy run ({span} s)")
        return 0
    fired = check_alerts_fire()
    print(f"live_prometheus.py: ok  after the mixed run these fire: {', '.join(fired)}")
    with_data, empty, errors, variables_checked = check_dashboards()
    for file, title, kind, why in empty:
        what = "zero" if kind == "zero" else "no series"
        print(f"live_prometheus.py:     empty by design ({what}): {file} / {title}: {why}")
    if errors:
        for e in errors:
            print(f"live_prometheus.py: FAIL {e}", file=sys.stderr)
        return 1
    print(f"live_prometheus.py: ok  {with_data} panel queries returned data, {len(empty)} empty "
          f"by design, none failed; {variables_checked} variables have values "
          f"({time.monotonic() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
