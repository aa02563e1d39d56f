// Layering rules (house style: only one package talks to each outside system).

// The Anchore and Kubernetes implementations: everything in src/anchore/ but its port and typed errors, everything in
// src/kube/ but its ports. Controllers and the model see only the ports.
const IMPLEMENTATIONS = 'anchore/(?!(anchore\\.port|errors)\\.ts$)|kube/(?!.*\\.port\\.ts)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'only-kube-imports-client-node',
      comment: 'Only src/kube/ may import @kubernetes/client-node; everything else uses its ports.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/kube/' },
      to: { path: '@kubernetes/client-node' },
    },
    {
      name: 'only-anchore-and-kube-speak-http',
      comment: 'Only src/anchore/ (Anchore) and src/kube/ (apiserver transport) may import undici.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(anchore|kube)/' },
      to: { path: 'node_modules/undici' },
    },
    {
      name: 'controllers-use-ports',
      comment: 'Controllers depend on ports (interfaces), never on the HTTP or client implementations.',
      severity: 'error',
      from: { path: '^src/controllers/', pathNot: '\\.test\\.ts$' },
      // Of src/anchore/ only the port and its typed errors: not the client, its transport or decoders.
      to: { path: `^src/(${IMPLEMENTATIONS})` },
    },
    {
      name: 'controllers-never-import-controllers',
      comment:
        'A controller reaches shared state through src/model/ (ports and the image model), never through another controller or its steps: ' +
        'src/controllers/X.controller.ts and its helpers X-*.ts / X.ts import only each other.',
      severity: 'error',
      from: { path: '^src/controllers/([a-z]+)[-.]', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/controllers/', pathNot: '^src/controllers/$1[-.]' },
    },
    {
      name: 'only-the-composition-root-knows-controllers',
      comment: 'Admission, telemetry, the model and kube adapters use ports; only src/operator.ts wires controllers together.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/(controllers/|operator\\.ts$)', '\\.test\\.ts$'] },
      to: { path: '^src/controllers/' },
    },
    {
      name: 'model-is-pure',
      comment: 'src/model/ is the shared domain model: no controllers, no Kubernetes or Anchore implementations (ports only).',
      severity: 'error',
      from: { path: '^src/model/' },
      to: { path: `^src/(controllers|admission|telemetry/(?!logger|metrics)|${IMPLEMENTATIONS})` },
    },
    {
      name: 'telemetry-is-the-ground-floor',
      comment:
        'src/telemetry/ (logger, metric registry, /metrics server) is used by every layer and reads none above it: no model, ' +
        'controllers, reports or admission. Metrics that read the model are registered from src/reports/.',
      severity: 'error',
      from: { path: '^src/telemetry/' },
      to: { path: '^src/(model|controllers|reports|admission)/' },
    },
    {
      name: 'runtime-is-kind-agnostic',
      comment: 'src/runtime/ is generic machinery: no controllers, no Anchore.',
      severity: 'error',
      from: { path: '^src/runtime/' },
      to: { path: '^src/(controllers|anchore)/' },
    },
    {
      name: 'src-does-not-import-tests',
      comment: 'Production code never imports the simulator or test tooling.',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^test/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
