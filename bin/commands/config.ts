/**
 * `quayfleet config validate [FILE] [--json]`: Quay's config validation without a running registry
 * (the same checks as `POST /api/v1/config/validate` and as every process at boot), for CI and
 * for `oc exec`. Exit 0 when valid, 1 with Quay's `{FieldGroup, Tags, Message}` list otherwise, 2
 * when the file cannot be read. `quayfleet config show [FILE]` prints the effective config with
 * Quay's defaults filled in and secrets redacted (GET /api/v1/config).
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import {
  configFilePath, readConfigYaml, redactConfig, toValidationErrors, validateQuayConfig, type ValidationError,
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
    .action((file: string | undefined, options: { json?: boolean }) => {
      const raw = readFile(file);
      const report = validateQuayConfig(raw, process.env, storageParamIssues);
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

function readFile(file: string | undefined): unknown {
  const path = file ?? configFilePath(process.env, process.cwd()).file;
  const { raw, issues } = readConfigYaml(path);
  if (issues.length > 0) fail(`config: ${toValidationErrors(issues).map((e) => e.Message).join('; ')}`);
  return raw;
}

/** One line per error: field group, keys, message. */
export function formatErrors(errors: readonly ValidationError[]): string {
  return `${errors.map((e) => `${e.FieldGroup}\t${e.Tags.join(',')}\t${e.Message}`).join('\n')}\n`;
}
