// The dependency direction of meshd's folders, checked by `npm test` (depcruise): each layer may
// import only the layers before it, and the subsystems of one layer do not import each other.
//   (model | wire | host) <- config <- store <- state <- (security | metrics | sample) <- (dns | mesh | health | overlay)
//   <- (api | provider) <- (daemon | cli) <- bin
const layers = [
  ['model', 'wire', 'host', 'log.ts', 'version.ts', 'last-resort.ts'],
  ['config'],
  ['store'],
  ['state'],
  ['security', 'metrics', 'sample'],
  ['dns', 'mesh', 'health', 'overlay'],
  ['api', 'provider'],
  ['daemon.ts', 'cli'],
  ['bin'],
];

const path = (names) => `^src/(${names.map((n) => n.replace('.', '\\.')).join('|')})($|/)`;

const forbidden = [];
layers.forEach((layer, i) => {
  const later = layers.slice(i + 1).flat();
  if (later.length > 0)
    forbidden.push({
      name: `no-upward-from-${layer[0].replace('.ts', '')}`,
      comment: `${layer.join(', ')} may not import ${later.join(', ')}: dependencies point down the layers`,
      severity: 'error',
      from: { path: path(layer) },
      to: { path: path(later) },
    });
  for (const name of layer) {
    const siblings = layer.filter((n) => n !== name && !n.endsWith('.ts'));
    if (name.endsWith('.ts') || siblings.length === 0) continue;
    forbidden.push({
      name: `no-sideways-from-${name}`,
      comment: `${name} may not import ${siblings.join(', ')}: subsystems of one layer are wired by the daemon`,
      severity: 'error',
      from: { path: path([name]) },
      to: { path: path(siblings) },
    });
  }
});
forbidden.push({
  name: 'no-circular',
  comment: 'circular imports hide the order things start in',
  severity: 'error',
  from: { path: '^src/' },
  to: { circular: true, dependencyTypesNot: ['type-only'] },
});

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
