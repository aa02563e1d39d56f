import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { k8sInventoryConfig, k8sInventoryEnv } from './k8s-inventory.ts';

const opts = {
  binary: '/bin/false',
  kubeconfig: '/k/config',
  anchoreUrl: 'http://127.0.0.1:8228/',
  username: 'admin',
  password: 'secret-pass',
  account: 'admin',
  pollSeconds: 60,
  clusterName: 'bench-x',
  workDir: '/tmp/x',
  namespaces: ['bench-x-cmp'],
};

describe('k8sInventoryConfig', () => {
  it('when the agent config is written, then it names the simulator, the cluster and the poll, and carries an empty password key for the environment to fill', () => {
    const text = k8sInventoryConfig(opts);
    const cfg = parse(text) as Record<string, any>;
    expect(cfg['anchore']).toMatchObject({ url: 'http://127.0.0.1:8228', user: 'admin', password: '', account: 'admin' });
    expect(cfg['mode']).toBe('periodic');
    expect(cfg['polling-interval-seconds']).toBe(60);
    expect(cfg['kubeconfig']).toEqual({ path: '/k/config', cluster: 'bench-x' });
    expect(cfg['namespace-selectors']['include']).toEqual(['bench-x-cmp']);
    expect(text).not.toContain('secret-pass');
  });

  it('when the health interval is outside what the agent accepts, then it throws', () => {
    expect(() => k8sInventoryConfig({ ...opts, healthReportSeconds: 10 })).toThrow(/30\.\.600/);
  });

  it('when the agent is started, then its environment names a HOSTNAME (its registration_instance_id) and carries no other agent setting', () => {
    const env = k8sInventoryEnv(opts);
    expect(env['HOSTNAME']).toBe('k8s-inventory-bench-bench-x');
    expect(env['HOME']).toBe('/tmp/x');
    expect(env['ANCHORE_K8S_INVENTORY_ANCHORE_PASSWORD']).toBe('secret-pass');
    expect(Object.keys(env).filter((k) => k.startsWith('ANCHORE_K8S_INVENTORY_'))).toEqual(['ANCHORE_K8S_INVENTORY_ANCHORE_PASSWORD']);
    expect(env['POD_NAMESPACE']).toBeUndefined();
    expect(k8sInventoryEnv({ ...opts, hostname: 'agent-0' })['HOSTNAME']).toBe('agent-0');
    expect(() => k8sInventoryEnv({ ...opts, hostname: '' })).toThrow(/HOSTNAME/);
  });
});
