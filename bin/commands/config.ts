/**
 * `quayfleet config validate [FILE] [--json] [--connect]`: Quay's config validation without a
 * running registry (the same checks as `POST /api/v1/config/validate` and as every process at
 * boot), for CI and for `oc exec`. `--connect` (or Quay's `--mode online`) also connects to the
 * database, Redis and every storage location with the config's credentials, trusting the PEM files
 * of `extra_ca_certs/` beside the config file (shared/runtime/config-connect.ts). Exit 0 when
 * valid, 1 with Quay's `{FieldGroup, Tags, Message}` list otherwise (warnings on stderr, also
 * beside errors), 2 when the file cannot be read. `quayfleet config show [FILE]` prints the effective config with
 * Quay's defaults filled in and secrets redacted (GET /api/v1/config).
 */
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import {
  configFilePath, readConfigYaml, redactConfig, toValidationErrors, validateQuayConfig, type ValidationError, type ValidationReport,
} from '../../shared/config/index.ts';
import { effectiveConfig } from '../../shared/config/effective.ts';
import { storageParamIssues } from '../../shared/storage/drivers/index.ts';
import { fail } from '../boot.ts';

/** Registers `config validate` and `config show`. */
export function registerConfig(program: Command): void {
  const config = program.command('config').description('validate and show the configuration (Quay\'s config.yaml, with an optional OpenShift spec.storage)');
  config
    .command('validate')
    .description('validate a config.yaml as Quay\'s config tool does, with this environment (DB_URI, REDIS_URL, REGISTRY_STORAGE_*)')
    .argument('[file]', 'the config.yaml (default: QUAYFLEET_CONFIG, else conf/stack/config.yaml)')
    .option('--json', 'print Quay\'s JSON array ([] when valid)')
    .option('--connect', 'also connect to the database, Redis and each storage location with the config\'s credentials (Quay\'s online mode)')
    .option('--mode <mode>', 'Quay\'s config-tool mode: online (as --connect) or offline (the default)')
    .action(async (file: string | undefined, options: { json?: boolean; connect?: boolean; mode?: string }) => {
      if (options.mode !== undefined && options.mode !== 'online' && options.mode !== 'offline') fail(`config validate: --mode is online or offline, not ${options.mode}`);
      const path = configPath(file);
      const raw = readFile(path);
      const report = options.connect || options.mode === 'online'
        ? await validateOnline(raw, dirname(path))
        : validateQuayConfig(raw, process.env, storageParamIssues);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(report.errors, null, 2)}\n`);
      } else {
        process.stdout.write(report.errors.length === 0 ? 'configuration is valid\n' : formatErrors(report.errors));
      }
      for (const warning of report.warnings) process.stderr.write(`warning: ${warning.FieldGroup}: ${warning.Message}\n`);
      if (report.errors.length > 0) process.exitCode = 1;
    });
  config
    .command('show')
    .description('print the effective configuration: Quay\'s defaults filled in, spec.storage mapped, secrets redacted')
    .argument('[file]', 'the config.yaml (default: QUAYFLEET_CONFIG, else conf/stack/config.yaml)')
    .action((file: string | undefined) => {
      const report = validateQuayConfig(readFile(file), process.env, storageParamIssues);
      if (!report.config) {
        process.stderr.write(formatErrors(report.errors));
        process.exit(1);
      }
      process.stdout.write(stringify(redactConfig(effectiveConfig(report.config))));
    });
}

function configPath(file: string | undefined): string {
  return file ?? configFilePath(process.env, process.cwd()).file;
}

/** Online validation with the extra CA certificates of Quay's `extra_ca_certs/` beside the config file. */
async function validateOnline(raw: unknown, configDir: string): Promise<ValidationReport> {
  // Loaded only here: the static validation opens no connection and loads no SDK.
  const { extraCaCertsIn, validateQuayConfigOnline } = await import('../../shared/runtime/config-connect.ts');
  return validateQuayConfigOnline(raw, storageParamIssues, { env: process.env, extraCaCerts: extraCaCertsIn(join(configDir, 'extra_ca_certs')) });
}

function readFile(file: string | undefined): unknown {
  const path = configPath(file);
  const { raw, issues } = readConfigYaml(path);
  if (issues.length > 0) fail(`config: ${toValidationErrors(issues).map((e) => e.Message).join('; ')}`);
  return raw;
}

/** One line per error: field group, keys, message. */
export function formatErrors(errors: readonly ValidationError[]): string {
  return `${errors.map((e) => `${e.FieldGroup}\t${e.Tags.join(',')}\t${e.Message}`).join('\n')}\n`;
}
