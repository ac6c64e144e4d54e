// Every rendered Kubernetes object against the JSON schema of its kind, offline: the schemas are
// those pinned in package.json (kubernetes-models for the built-in kinds, @kubernetes-models/keda
// and @kubernetes-models/prometheus-operator for the CRDs), each compiled into its model's
// validate(). Checked: required fields, types, enums and formats of every field the schema
// describes. Not checked: unknown fields (the schemas allow additional properties, so a typo'd
// optional field passes), and anything only an API server knows (admission, immutable fields,
// whether a CRD is installed).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const PACKAGES = {
  'keda.sh': '@kubernetes-models/keda',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

/**
 * A validator for objects of any kind, or undefined when the schema packages are not installed
 * (`npm install` brings them: they are devDependencies).
 */
export async function loadSchemaValidator(root) {
  // The packages export their models for `import` only, by subpath: load the files directly.
  const require = createRequire(path.join(root, 'package.json'));
  const dirOf = (pkg) => require.resolve.paths(pkg).map((dir) => path.join(dir, pkg)).find((dir) => fs.existsSync(path.join(dir, 'package.json')));
  if (!dirOf('kubernetes-models')) return undefined;
  const models = new Map();
  /** The model class of `apiVersion`/`kind`, or undefined when no pinned package has it. */
  const modelOf = async (apiVersion, kind) => {
    const key = `${apiVersion}/${kind}`;
    if (!models.has(key)) {
      const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
      const pkg = PACKAGES[group] ?? 'kubernetes-models';
      // The ES module build: `.mjs` beside the CommonJS `.js` in the 4.x line (pinned: 5.x wants Node 22).
      const file = [`${kind}.mjs`, `${kind}.js`].map((name) => path.join(dirOf(pkg) ?? '', group, version, name)).find((f) => fs.existsSync(f));
      models.set(key, file ? (await import(pathToFileURL(file).href))[kind] : undefined);
    }
    return models.get(key);
  };
  const versions = ['kubernetes-models', ...Object.values(PACKAGES)].map((p) => `${p}@${JSON.parse(fs.readFileSync(path.join(dirOf(p), 'package.json'), 'utf8')).version}`);
  return {
    versions,
    /** The schema errors of `object` (empty when valid). */
    async check(object) {
      const Model = await modelOf(object.apiVersion, object.kind);
      if (!Model) return [`no pinned schema for ${object.apiVersion} ${object.kind}`];
      // kustomize wraps long base64 values of Secrets over lines, which Go's decoder (the API
      // server's) skips; the schema's "byte" format does not.
      const data = object.kind === 'Secret' && object.data
        ? Object.fromEntries(Object.entries(object.data).map(([k, v]) => [k, String(v).replace(/\s+/g, '')]))
        : undefined;
      try {
        new Model(data ? { ...object, data } : object).validate();
        return [];
      } catch (error) {
        return [error.message];
      }
    },
  };
}
