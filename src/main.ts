#!/usr/bin/env node
import { buildApp, type App } from './app.js';
import { createLogger } from './logger.js';
import { ConfigError, readConfig, USAGE, type Config } from './config.js';
import { IoasdError } from './core/errors.js';
import type { TopologyDocument } from './schemas/topology.js';
import { DatabaseLockedError } from './store/database.js';
import { DatabaseTooNewError } from './store/migrations.js';
import { readTopologyFile } from './topology/file.js';
import { readSysfsTopology } from './topology/sysfs.js';
import { listenFailed, noteStartFiles, publicUrl, readyLine, removeNewFiles, StartError, topologyRefused } from './startup.js';

/** The --sysfs host reader, also used by POST /v1/topology/rescan (it refuses a host without IOMMU groups). */
function hostScan(config: Config): (() => TopologyDocument) | undefined {
  const root = config.sysfs;
  if (root === undefined) return undefined;
  return () => readSysfsTopology(root, { proc: config.proc });
}

function loadTopology(config: Config): TopologyDocument | undefined {
  if (config.topology !== undefined) {
    try {
      return readTopologyFile(config.topology);
    } catch (err) {
      throw topologyRefused(err);
    }
  }
  return hostScan(config)?.();
}

/** Stops accepting connections, lets in-flight requests finish, then closes the database. */
function handleSignals(app: App): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main(): Promise<void> {
  let config: Config | 'help';
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ioasd: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (config === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }

  const logger = createLogger(config.logLevel);
  const refuse = (err: unknown): never => {
    const message = (err as Error).message;
    logger.fatal(message);
    process.stderr.write(`ioasd: ${message}\n`);
    process.exit(1);
  };
  const expected = (err: unknown) => err instanceof StartError || err instanceof DatabaseLockedError || err instanceof DatabaseTooNewError || err instanceof IoasdError;
  let topology: TopologyDocument | undefined;
  try {
    // Read before the database is opened: a broken document leaves nothing behind.
    topology = loadTopology(config);
  } catch (err) {
    if (expected(err)) refuse(err);
    throw err;
  }
  // A start refused after the database was opened removes what it created (database, token file).
  const before = noteStartFiles(config.db);
  let app: App | undefined;
  try {
    app = await buildApp({
      db: config.db,
      policy: config.policy,
      topology,
      hostScan: hostScan(config),
      adminToken: config.adminToken,
      ioasidRange: config.ioasidRange,
      rateLimit: config.rateLimit,
      logger,
    });
    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (err) {
      throw listenFailed(err, config.host, config.port);
    }
  } catch (err) {
    await app?.close().catch(() => undefined);
    if (!(err instanceof DatabaseLockedError)) removeNewFiles(config.db, before);
    if (expected(err)) refuse(err);
    throw err;
  }
  handleSignals(app);
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const url = publicUrl(config.host, port);
  app.log.info(
    { db: config.db, policy: app.ioasd.store.getPolicy(), url },
    readyLine({ url, allAddresses: config.host === '0.0.0.0' || config.host === '::', db: config.db, tokenWritten: app.ioasd.adminTokenFile, fixedToken: config.adminToken !== undefined }),
  );
}

await main();
