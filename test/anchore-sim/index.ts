// Public entry point of the Anchore Enterprise V2 API simulator (tests, demo, benchmarks, fault injection).
export { startSimulator, MAX_BODY_BYTES } from './simulator.ts';
export { defaultConfig, resolveConfig, loadConfigFile, SimConfigError, DEFAULT_POLICY_ID, ADMIN_ACCOUNT } from './config.ts';
export { parseFaultRules, FaultRuleError } from './faults.ts';
export { DOCKERFILE_WITHOUT_FORCE } from './images.ts';
export { INTEGRATION_TYPE } from './integrations.ts';
export { SEVERITIES } from './findings.ts';
export type { VulnerabilityItem, PolicyFinding } from './findings.ts';
export type {
  AnchoreSimulator,
  SimulatorOptions,
  RequestQuery,
  RecordedRequest,
  FaultRule,
  SimConfig,
  SimConfigInput,
  SimAccount,
  SimUser,
  SimApiKey,
  SimPolicy,
  SimAnalysisConfig,
  ErrorShape,
  AnchoreImageRecord,
  AnchoreImageDetail,
  AnalysisStatus,
  AnalysisStatusDetail,
  InventoryReport,
  InventoryItem,
  KubernetesInventory,
  IntegrationRecord,
  VerdictOverride,
  VulnerabilityInput,
} from './types.ts';
