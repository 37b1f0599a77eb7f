#!/usr/bin/env node
import { loadSettings, parseFlags, usage } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { installLastResort } from '../last-resort.js';
import { logger, setLogLevel } from '../log.js';
import { removeTables } from '../mesh/kernel/nft.js';
import { messageOf } from '../model/errors.js';
import { removeOverlay } from '../overlay/cleanup.js';
import { meshdVersion } from '../version.js';

const log = logger('meshd');

async function main(): Promise<void> {
  let daemon: Daemon;
  try {
    const cmd = parseFlags(process.argv.slice(2));
    if (cmd.help) {
      process.stdout.write(usage);
      return;
    }
    if (cmd.version) {
      process.stdout.write(`meshd ${meshdVersion()}\n`);
      return;
    }
    if (cmd.cleanup) {
      const removed = await removeTables();
      process.stdout.write(
        removed.length > 0
          ? `removed nftables tables: ${removed.join(', ')}\n`
          : 'no meshd nftables tables\n',
      );
      const overlay = await removeOverlay();
      if (overlay.length > 0)
        process.stdout.write(`removed overlay devices and tables: ${overlay.join(', ')}\n`);
      return;
    }
    installLastResort();
    const settings = loadSettings(cmd);
    setLogLevel(settings.log.level);
    daemon = await Daemon.start(settings);
  } catch (err) {
    process.stderr.write(`meshd: ${messageOf(err)}\n`);
    process.exit(2);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    void daemon.close().then(() => process.exit(0));
  };
  daemon.onFatal((err) => {
    process.stderr.write(`meshd: ${messageOf(err)}\n`);
    void daemon.close().then(() => process.exit(2));
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
