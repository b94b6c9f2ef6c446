// The PowerSync Service's /metrics, served by the exporter the service itself uses, for verify.sh's lag check
// (xtask/tests/verify/host.rs). Set up as the service does (packages/service-core/src/metrics/open-telemetry/
// util.ts and OpenTelemetryMetricsFactory.ts, service 1.25.0): a MeterProvider with the Resource
// {service: 'PowerSync'}, a PrometheusExporter reader, the meter 'powersync', and the lag as an observable
// gauge. @opentelemetry/exporter-prometheus 0.51.1 and @opentelemetry/sdk-metrics 1.24.1 are the versions
// service-core declares (pinned in package-lock.json).
//   node serve-metrics.mjs PORT[=LAG]...   one service's endpoint per argument, each with a MeterProvider and
//                                          exporter of its own (one Node.js start serves a test's every case).
//                                          LAG a JavaScript number (0, 20, 1.5e-7), observed as given (a running
//                                          service was seen printing 0); without it nothing is observed and the
//                                          gauge is missing from the text, as while replication has not connected
// Prints `listening` once every http://127.0.0.1:PORT/metrics answers, then serves until it is killed.
import { ValueType } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { Resource } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

async function serve(port, lag) {
  const exporter = new PrometheusExporter({ host: '127.0.0.1', port: Number(port), preventServerStart: true });
  const provider = new MeterProvider({ resource: new Resource({ service: 'PowerSync' }), readers: [exporter] });
  const meter = provider.getMeter('powersync');
  meter
    .createUpDownCounter('powersync_concurrent_connections', { description: 'Number of concurrent sync connections', valueType: ValueType.INT })
    .add(3);
  meter
    .createObservableGauge('powersync_replication_lag_seconds', {
      description: 'Replication lag between the source database and PowerSync instance',
      unit: 'seconds',
      valueType: ValueType.DOUBLE
    })
    .addCallback((result) => {
      if (lag !== undefined) result.observe(Number(lag));
    });
  await exporter.startServer();
}

const endpoints = process.argv.slice(2);
if (endpoints.length === 0) {
  process.stderr.write('usage: node serve-metrics.mjs PORT[=LAG]...\n');
  process.exit(2);
}
for (const endpoint of endpoints) {
  const [port, lag] = endpoint.split('=');
  await serve(port, lag);
}
// The exporter unrefs its server; this keeps the process serving.
setInterval(() => {}, 1 << 30);
process.stdout.write('listening\n');
