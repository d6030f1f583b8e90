-- wrk script: POST one job per request; at the end, print the figures as one JSON line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input_text": "Wash hands before handling food. Keep raw meat below ready-to-eat food in the fridge. Cook poultry to 75 C in the thickest part. Cool leftovers within two hours and label them with the date. Clean and sanitise surfaces after each task."}'

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
