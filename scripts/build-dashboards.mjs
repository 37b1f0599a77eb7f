// Writes grafana/dashboards/*.json. The dashboards are data; this keeps their shared parts
// (variables, datasource, units, $__rate_interval) in one place. Run: node scripts/build-dashboards.mjs
import { writeFileSync } from 'node:fs';

// Grafana's own variable syntax, not a JS template.
const ds = { type: 'prometheus', uid: ['$', '{datasource}'].join('') };
const sel = 'job=~"$job", instance=~"$instance"';
const svcSel = `${sel}, service=~"$service"`;

function variables(withService) {
  const list = [
    {
      name: 'datasource',
      type: 'datasource',
      query: 'prometheus',
      label: 'Data source',
      current: {},
      hide: 0,
    },
    {
      name: 'job',
      type: 'query',
      datasource: ds,
      label: 'Job',
      refresh: 2,
      includeAll: true,
      multi: true,
      allValue: '.+',
      query: { query: 'label_values(meshd_build_info, job)', refId: 'job' },
      definition: 'label_values(meshd_build_info, job)',
      current: {},
    },
    {
      name: 'instance',
      type: 'query',
      datasource: ds,
      label: 'Node',
      refresh: 2,
      includeAll: true,
      multi: true,
      allValue: '.+',
      query: { query: 'label_values(meshd_build_info{job=~"$job"}, instance)', refId: 'instance' },
      definition: 'label_values(meshd_build_info{job=~"$job"}, instance)',
      current: {},
    },
  ];
  if (withService) {
    list.push({
      name: 'service',
      type: 'query',
      datasource: ds,
      label: 'Service',
      refresh: 2,
      includeAll: true,
      multi: true,
      allValue: '.+',
      query: { query: 'label_values(meshd_health_task_up{job=~"$job"}, service)', refId: 'service' },
      definition: 'label_values(meshd_health_task_up{job=~"$job"}, service)',
      current: {},
    });
  }
  return { list };
}

let panelId = 1;
function panel(title, unit, targets, opts = {}) {
  const w = opts.w ?? 12;
  return {
    id: panelId++,
    type: opts.type ?? 'timeseries',
    title,
    description: opts.description ?? '',
    datasource: ds,
    gridPos: { h: opts.h ?? 8, w, x: 0, y: 0 },
    fieldConfig: {
      defaults: { unit, ...(opts.type === 'stat' ? {} : { custom: { drawStyle: 'line', fillOpacity: 10 } }) },
      overrides: [],
    },
    options:
      opts.type === 'stat'
        ? { reduceOptions: { calcs: ['lastNotNull'] }, colorMode: 'value' }
        : { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
    targets: targets.map(([expr, legend], i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: ds,
      expr,
      legendFormat: legend,
    })),
  };
}

/** A stat panel that counts: 0, never "No data", when there is nothing to count. */
function stat(title, unit, expr) {
  return panel(title, unit, [[`${expr} or vector(0)`, title]], { type: 'stat', w: 6, h: 5 });
}

/** Lays panels out left to right, two per row (or as wide as each asks). */
function layout(panels) {
  let x = 0;
  let y = 0;
  let rowH = 0;
  for (const p of panels) {
    if (x + p.gridPos.w > 24) {
      x = 0;
      y += rowH;
      rowH = 0;
    }
    p.gridPos.x = x;
    p.gridPos.y = y;
    x += p.gridPos.w;
    rowH = Math.max(rowH, p.gridPos.h);
  }
  return panels;
}

function dashboard(uid, title, description, panels, withService) {
  panelId = 1;
  return {
    uid,
    title,
    description,
    tags: ['meshd'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    templating: variables(withService),
    links: [{ type: 'dashboards', tags: ['meshd'], asDropdown: true, title: 'meshd' }],
    panels: layout(panels()),
  };
}

const ri = '$__rate_interval';
const dashboards = {
  'meshd-overview': dashboard(
    'meshd-overview',
    'meshd / Overview',
    'Nodes, DNS and mesh traffic, task health and errors at a glance.',
    () => [
      // Counts show 0 when nothing is there, not "No data" (`or vector(0)`): an operator reads
      // "No data" as broken. Store connected keeps "No data": unknown is not disconnected.
      stat('Nodes ready', 'short', `max(meshd_cluster_nodes{${sel}, state="ready"})`),
      stat('Nodes down', 'short', `max(meshd_cluster_nodes{${sel}, state="down"})`),
      panel('Store connected', 'bool', [[`min(meshd_store_connected{${sel}})`, 'connected']], {
        type: 'stat',
        w: 6,
        h: 5,
      }),
      stat('meshd nodes scraped', 'short', `count(meshd_build_info{${sel}})`),
      stat('Unhealthy tasks', 'short', `count(meshd_health_task_up{${sel}} == 0)`),
      stat('Ejections, last hour', 'short', `sum(increase(meshd_mesh_ejections_total{${sel}}[1h]))`),
      stat('UDP flows', 'short', `sum(meshd_mesh_udp_flows{${sel}})`),
      stat(
        'Kernel update failures, last hour',
        'short',
        `sum(increase(meshd_kernel_update_failures_total{${sel}}[1h]))`,
      ),
      panel('DNS queries/s by rcode', 'reqps', [
        [`sum by (rcode) (rate(meshd_dns_requests_total{${sel}}[${ri}]))`, '{{rcode}}'],
      ]),
      panel('Mesh connections/s by service', 'cps', [
        [`sum by (service) (rate(meshd_mesh_connections_total{${svcSel}}[${ri}]))`, '{{service}}'],
      ]),
      panel('Healthy vs unhealthy tasks', 'short', [
        [`sum(max by (service, task) (meshd_health_task_up{${svcSel}}))`, 'healthy'],
        [`count(max by (service, task) (meshd_health_task_up{${svcSel}}) == 0)`, 'unhealthy'],
      ]),
      panel('Errors/s', 'ops', [
        [`sum(rate(meshd_mesh_connect_errors_total{${svcSel}}[${ri}]))`, 'mesh connect errors'],
        [`sum(rate(meshd_dns_requests_total{${sel}, rcode="SERVFAIL"}[${ri}]))`, 'DNS SERVFAIL'],
        [`sum(rate(meshd_dns_dropped_total{${sel}}[${ri}]))`, 'DNS dropped'],
      ]),
    ],
    true,
  ),
  'meshd-dns': dashboard(
    'meshd-dns',
    'meshd / DNS',
    'Service discovery DNS: load, answers, latency, cache and upstreams.',
    () => [
      panel('Queries/s by type', 'reqps', [
        [`sum by (qtype) (rate(meshd_dns_requests_total{${sel}}[${ri}]))`, '{{qtype}}'],
      ]),
      panel('Queries/s by rcode', 'reqps', [
        [`sum by (rcode) (rate(meshd_dns_requests_total{${sel}}[${ri}]))`, '{{rcode}}'],
      ]),
      panel('Queries/s by source', 'reqps', [
        [`sum by (source) (rate(meshd_dns_requests_total{${sel}}[${ri}]))`, '{{source}}'],
      ]),
      panel('Latency p50 / p99', 's', [
        [
          `histogram_quantile(0.5, sum by (le) (rate(meshd_dns_request_duration_seconds_bucket{${sel}}[${ri}])))`,
          'p50',
        ],
        [
          `histogram_quantile(0.99, sum by (le) (rate(meshd_dns_request_duration_seconds_bucket{${sel}}[${ri}])))`,
          'p99',
        ],
      ]),
      panel('Cache hit ratio (forwarded names)', 'percentunit', [
        [
          `sum(rate(meshd_dns_requests_total{${sel}, source="cache"}[${ri}])) / clamp_min(sum(rate(meshd_dns_requests_total{${sel}, source=~"cache|forward"}[${ri}])), 1e-9)`,
          'hit ratio',
        ],
      ]),
      panel('Cache entries', 'short', [
        [`sum by (instance) (meshd_dns_cache_entries{${sel}})`, '{{instance}}'],
      ]),
      panel('Upstream requests/s by result', 'reqps', [
        [
          `sum by (upstream, result) (rate(meshd_dns_upstream_requests_total{${sel}}[${ri}]))`,
          '{{upstream}} {{result}}',
        ],
      ]),
      panel('Truncated responses/s', 'ops', [
        [`sum(rate(meshd_dns_truncated_total{${sel}}[${ri}]))`, 'truncated'],
      ]),
    ],
    false,
  ),
  'meshd-mesh': dashboard(
    'meshd-mesh',
    'meshd / Routing mesh',
    'Published ports and VIPs: connections, bytes, errors, ejections, per-task load, UDP flows.',
    () => [
      panel('Connections/s by service and port', 'cps', [
        [
          `sum by (service, port) (rate(meshd_mesh_connections_total{${svcSel}}[${ri}]))`,
          '{{service}}:{{port}}',
        ],
      ]),
      panel('Active connections', 'short', [
        [`sum by (service) (meshd_mesh_active_connections{${svcSel}})`, '{{service}}'],
      ]),
      panel('Bytes/s', 'Bps', [
        [
          `sum by (service, direction) (rate(meshd_mesh_bytes_total{${svcSel}}[${ri}]))`,
          '{{service}} {{direction}}',
        ],
      ]),
      panel('Connect errors/s by reason', 'ops', [
        [
          `sum by (service, reason) (rate(meshd_mesh_connect_errors_total{${svcSel}}[${ri}]))`,
          '{{service}} {{reason}}',
        ],
      ]),
      panel('Ejections/s', 'ops', [
        [`sum by (service) (rate(meshd_mesh_ejections_total{${svcSel}}[${ri}]))`, '{{service}}'],
      ]),
      panel('Connect time p99', 's', [
        [
          `histogram_quantile(0.99, sum by (le) (rate(meshd_mesh_connect_duration_seconds_bucket{${sel}}[${ri}])))`,
          'p99',
        ],
      ]),
      panel('Open connections per task', 'short', [
        [`sum by (service, task) (meshd_mesh_task_connections{${svcSel}})`, '{{task}}'],
      ]),
      panel('UDP flows', 'short', [[`sum by (service) (meshd_mesh_udp_flows{${svcSel}})`, '{{service}}']]),
      panel('Task up', 'bool', [[`max by (service, task) (meshd_health_task_up{${svcSel}})`, '{{task}}']]),
      panel('Ports by data plane', 'short', [[`sum by (plane) (meshd_mesh_ports{${sel}})`, '{{plane}}']]),
      panel('Kernel data plane: new connections/s', 'cps', [
        [
          `sum by (service, port) (rate(meshd_kernel_new_connections_total{${svcSel}}[${ri}])) or vector(0)`,
          '{{service}}:{{port}}',
        ],
      ]),
      panel('Kernel data plane: conntrack entries and nft update p99', 'short', [
        [`max(meshd_kernel_conntrack_entries{${sel}})`, 'conntrack entries'],
        [
          `histogram_quantile(0.99, sum by (le) (rate(meshd_kernel_update_seconds_bucket{${sel}}[${ri}]))) or vector(0)`,
          'nft update p99 (s)',
        ],
      ]),
      panel('Health checks/s by result', 'ops', [
        [
          `sum by (service, result) (rate(meshd_health_checks_total{${svcSel}}[${ri}]))`,
          '{{service}} {{result}}',
        ],
      ]),
    ],
    true,
  ),
  'meshd-cluster': dashboard(
    'meshd-cluster',
    'meshd / Cluster',
    'Nodes, the store connection, watch traffic and how fast changes reach every node.',
    () => [
      panel('Nodes by state', 'short', [[`max by (state) (meshd_cluster_nodes{${sel}})`, '{{state}}']]),
      panel('Store connected', 'bool', [[`meshd_store_connected{${sel}}`, '{{instance}}']]),
      panel('Seconds since last store sync', 's', [
        [`time() - meshd_store_last_sync_timestamp_seconds{${sel}}`, '{{instance}}'],
      ]),
      panel('Store requests/s by op and result', 'reqps', [
        [`sum by (op, result) (rate(meshd_store_requests_total{${sel}}[${ri}]))`, '{{op}} {{result}}'],
      ]),
      panel('Watch events/s', 'ops', [
        [`sum by (instance) (rate(meshd_store_watch_events_total{${sel}}[${ri}]))`, '{{instance}}'],
      ]),
      panel('Convergence p50 / p99', 's', [
        [
          `histogram_quantile(0.5, sum by (le) (rate(meshd_state_convergence_seconds_bucket{${sel}}[${ri}])))`,
          'p50',
        ],
        [
          `histogram_quantile(0.99, sum by (le) (rate(meshd_state_convergence_seconds_bucket{${sel}}[${ri}])))`,
          'p99',
        ],
      ]),
      panel('Snapshot builds/s', 'ops', [
        [`sum by (instance) (rate(meshd_state_snapshot_builds_total{${sel}}[${ri}]))`, '{{instance}}'],
      ]),
      panel('Event-loop lag p99', 's', [
        [`max by (instance) (nodejs_eventloop_lag_p99_seconds{${sel}})`, '{{instance}}'],
      ]),
      panel('Heap used', 'bytes', [
        [`sum by (instance) (nodejs_heap_size_used_bytes{${sel}})`, '{{instance}}'],
      ]),
      panel('Open handles', 'short', [
        [`sum by (instance) (nodejs_active_handles_total{${sel}})`, '{{instance}}'],
      ]),
    ],
    false,
  ),
};

for (const [name, d] of Object.entries(dashboards)) {
  writeFileSync(
    new URL(`../grafana/dashboards/${name}.json`, import.meta.url),
    `${JSON.stringify(d, null, 2)}\n`,
  );
}
console.log(`wrote ${Object.keys(dashboards).length} dashboards`);
