import { describe, expect, it } from 'vitest';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { attachContainer } from '../../../src/model/container.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { initCluster } from '../../../src/model/node.js';
import {
  createService,
  readServiceSpec,
  type ServiceSpec,
  updateService,
} from '../../../src/model/service.js';
import { addTask } from '../../../src/model/task.js';
import type { EngineContainer } from '../../../src/provider/engine.js';
import { serviceFromLabels } from '../../../src/provider/labels.js';
import { containerLabel, plan, providerLabel, providerName } from '../../../src/provider/reconcile.js';
import { applyChange, build } from '../../helpers/state.js';

// The container provider's plan as a pure table: engine listing in, actions out.
const now = '2026-01-01T00:00:00.000Z';
const base = () =>
  build(
    (s) => initCluster(s, '10.0.0.0/24', now),
    (s) =>
      createNetwork(
        s,
        readNetworkSpec(Fields.of({ name: 'apps', subnet: '10.89.0.0/24', attachable: true }, '')),
        now,
      ),
  );
const container = (
  name: string,
  address: string,
  labels: Record<string, string> = {},
  aliases: string[] = [],
): EngineContainer => ({
  id: `id-${name}`,
  name,
  running: true,
  labels,
  health: 'none',
  networks: [{ name: 'apps', address, aliases }],
});
const withService = (s: ClusterState, body: Record<string, unknown>) =>
  applyChange(s, createService(s, readServiceSpec(Fields.of(body, '')), now));

describe('the container provider plan', () => {
  it('lets labelled containers join only services made from labels or opted in', () => {
    let s = withService(base(), { name: 'billing', networks: [{ network: 'apps' }] });
    const c = container('intruder', '10.89.0.50', { 'meshd.service': 'billing' });
    expect(plan(s, { containers: [c], unknown: [] }, 'n1')).toEqual([
      {
        kind: 'skip',
        container: 'intruder',
        category: 'not_opted_in',
        reason: `service billing was not created from container labels; label it ${providerLabel}=${providerName} to let labelled containers join it`,
      },
    ]);
    // A service created from labels carries the mark, and takes its replicas.
    s = applyChange(s, createService(s, serviceFromLabels({ 'meshd.service': 'web' }, 'apps'), now));
    const actions = plan(
      s,
      { containers: [container('web-1', '10.89.0.51', { 'meshd.service': 'web' })], unknown: [] },
      'n1',
    );
    expect(actions.map((a) => a.kind)).toEqual(['add-task']);
    // An operator's service that opts in takes them too.
    s = withService(s, {
      name: 'api',
      networks: [{ network: 'apps' }],
      labels: { [providerLabel]: providerName },
    });
    expect(
      plan(
        s,
        { containers: [container('api-1', '10.89.0.52', { 'meshd.service': 'api' })], unknown: [] },
        'n1',
      ).map((a) => a.kind),
    ).toEqual(['add-task']);
  });

  it('keeps a task whose container could not be inspected (a transient engine error)', () => {
    const b = base();
    let s = applyChange(b, createService(b, serviceFromLabels({ 'meshd.service': 'web' }, 'apps'), now));
    const svc = [...s.services.values()][0];
    s = applyChange(
      s,
      addTask(
        s,
        {
          service: svc?.id as string,
          name: 'web-1',
          ips: ['10.89.0.51'],
          reportedHealth: 'none',
          labels: { [providerLabel]: providerName, [containerLabel]: 'id-web-1' },
        },
        'n1',
        now,
      ),
    );
    // The container is listed but its inspect failed: no removal.
    expect(plan(s, { containers: [], unknown: [{ id: 'id-web-1', name: 'web-1' }] }, 'n1')).toEqual([]);
    // Gone for real (not listed at all): removed.
    expect(plan(s, { containers: [], unknown: [] }, 'n1').map((a) => a.kind)).toEqual(['remove-task']);
  });

  it('leaves out engine aliases and names that another object answers on the network', () => {
    const s = withService(base(), { name: 'web', networks: [{ network: 'apps' }] });
    // compose gives every container its service name as an alias: `web` must not join meshd's web.
    const actions = plan(
      s,
      { containers: [container('proj-web-1', '10.89.0.60', {}, ['web', 'cache'])], unknown: [] },
      'n1',
    );
    expect(actions).toContainEqual({
      kind: 'skip',
      container: 'proj-web-1',
      category: 'name',
      reason: 'alias web left out: it is already in use on network apps by service web',
    });
    const attach = actions.find((a) => a.kind === 'attach');
    expect(attach?.kind === 'attach' && attach.spec.aliases).toEqual(['cache']);
    // A container named like the service is not registered at all.
    expect(plan(s, { containers: [container('web', '10.89.0.61')], unknown: [] }, 'n1')).toEqual([
      {
        kind: 'skip',
        container: 'web',
        category: 'name',
        reason: 'its name is already in use on network apps by service web',
      },
    ]);
    // And the model refuses it through the API too.
    expect(() => attachContainer(s, { network: 'apps', name: 'web', aliases: [] }, 'n1', now)).toThrow(
      'already in use',
    );
  });

  it("makes a label-made service follow its containers' labels; an operator's service never", () => {
    const b = base();
    let s = applyChange(
      b,
      createService(
        b,
        serviceFromLabels({ 'meshd.service': 'api', 'meshd.endpoint-mode': 'dnsrr' }, 'apps'),
        now,
      ),
    );
    const relabelled = {
      'meshd.service': 'api',
      'meshd.endpoint-mode': 'vip',
      'meshd.expose': '9000',
      'meshd.alias': 'backend',
    };
    const listing = {
      containers: [
        container('api-1', '10.89.0.70', relabelled),
        container('api-2', '10.89.0.71', relabelled),
      ],
      unknown: [],
    };
    const update = plan(s, listing, 'n1').find((a) => a.kind === 'update-service');
    expect(update?.kind === 'update-service' && update.spec).toMatchObject({
      endpointMode: 'vip',
      expose: [9000],
      networks: [{ network: 'apps', aliases: ['backend'] }],
    });
    // Applied, the labels and the spec agree: nothing more to change.
    s = applyChange(s, updateService(s, 'api', (update as { spec: ServiceSpec }).spec, undefined, now));
    expect(plan(s, listing, 'n1').filter((a) => a.kind === 'update-service')).toEqual([]);
    // An operator's service that only opted in to tasks keeps its own spec.
    s = withService(s, {
      name: 'ops',
      networks: [{ network: 'apps' }],
      labels: { [providerLabel]: providerName },
    });
    const ops = {
      containers: [container('ops-1', '10.89.0.72', { 'meshd.service': 'ops', 'meshd.expose': '81' })],
      unknown: [],
    };
    expect(plan(s, ops, 'n1').map((a) => a.kind)).toEqual(['add-task']);
  });

  it('says once, with the names, when replicas disagree, and keeps the last agreed spec', () => {
    const b = base();
    const s = applyChange(b, createService(b, serviceFromLabels({ 'meshd.service': 'web' }, 'apps'), now));
    const actions = plan(
      s,
      {
        containers: [
          container('web-1', '10.89.0.80', { 'meshd.service': 'web', 'meshd.alias': 'www' }),
          container('web-2', '10.89.0.81', { 'meshd.service': 'web' }),
        ],
        unknown: [],
      },
      'n1',
    );
    expect(actions.filter((a) => a.kind === 'update-service')).toEqual([]);
    expect(actions).toContainEqual({
      kind: 'skip',
      container: 'web-1,web-2',
      category: 'disagree',
      reason:
        'replicas of service web disagree on their labels (web-1 | web-2); keeping the last agreed spec',
    });
    expect(actions.filter((a) => a.kind === 'add-task')).toHaveLength(2);
  });

  it('names the exact reason a labelled container is rejected', () => {
    const s = base();
    const reasons = (labels: Record<string, string>) =>
      plan(s, { containers: [container('c', '10.89.0.90', labels)], unknown: [] }, 'n1').map(
        (a) => a.kind === 'skip' && a.reason,
      );
    expect(reasons({ 'meshd.service': 'x', 'meshd.network': 'nosuchnet' })).toEqual([
      'meshd.network=nosuchnet: there is no meshd network of that name (meshctl network ls)',
    ]);
    expect(reasons({ 'meshd.service': 'x', 'meshd.endpoint-mode': 'bogus' })[0]).toMatch(
      /labels of service x: endpointMode: must be one of/,
    );
  });
});
