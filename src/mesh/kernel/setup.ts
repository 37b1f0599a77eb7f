import type { Registry } from 'prom-client';
import type { Settings } from '../../config/settings.js';
import { kernelUnavailable } from '../../host/commands.js';
import type { Logger } from '../../log.js';
import { MeshError } from '../../model/errors.js';
import { KernelPlane } from './kernel-plane.js';

/**
 * The kernel data plane as `mesh.dataplane` asks: `kernel` insists (a start without nft or
 * CAP_NET_ADMIN is an error), `auto` says once why it serves everything in userspace, and
 * `userspace` never runs nft. In every case the plane exists, so `service inspect` can say which
 * plane serves each port and why.
 */
export async function startKernelPlane(
  settings: Settings['mesh'],
  registry: Registry,
  log: Logger,
): Promise<KernelPlane> {
  const mode = settings.dataplane;
  if (mode === 'userspace')
    return new KernelPlane(settings, registry, log, 'the data plane is set to userspace');
  const unavailable = await kernelUnavailable();
  if (unavailable && mode === 'kernel')
    throw new MeshError('failed_precondition', `--dataplane kernel: ${unavailable}`);
  if (unavailable)
    log.info('kernel data plane unavailable; every port is served in userspace', { reason: unavailable });
  return new KernelPlane(settings, registry, log, unavailable);
}
