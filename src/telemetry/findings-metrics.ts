// Moved to src/reports/findings-metrics.ts: telemetry is the ground floor (logger, metric registry, /metrics server)
// and reads no model. This re-export stays only until bench/event-loop.ts imports the new path; nothing in src/ may
// import it (.dependency-cruiser.cjs, rule telemetry-findings-shim-unused).
export { registerFindingsMetrics } from '../reports/findings-metrics.ts';
