// Target config values may read the environment: `url: "{{env_var 'PG_URL'}}"`.
// Values that can hold a credential are remembered as secrets so that every
// log line, artifact and error message can be scrubbed of them.

export interface Secrets {
  values: Set<string>;
}

const TAG = /\{\{~?\s*(env_var|var)\s+(?:'([^']*)'|"([^"]*)")(?:\s+(?:'([^']*)'|"([^"]*)"))?\s*~?\}\}/g;
const SECRET_ENV_NAME = /pass|secret|token|key|url|dsn|cred|auth/i;

/**
 * Environment variables named ETL_ENV_SECRET_* hold secrets by declaration
 * (as dbt's DBT_ENV_SECRET_*): usable in target settings, where they are
 * masked, and refused in model and macro templates, whose rendered SQL is
 * written to target/compiled/ and the manifest.
 */
export const SECRET_ENV_PREFIX = 'ETL_ENV_SECRET_';

/** Renders `{{env_var 'X' 'default'}}` and `{{var 'x'}}` inside a config string. */
export function interpolateConfigString(
  value: string,
  vars: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  secrets: Secrets,
  holdsSecret: boolean,
): { value: string } | { error: string; hint?: string } {
  // Checked on the setting as written: a value read from the environment may itself contain "{{".
  if (/\{\{/.test(value.replace(TAG, ''))) {
    return { error: `only {{env_var '...'}} and {{var '...'}} may be used in a target setting`, hint: 'quote the helper arguments' };
  }
  let error: { error: string; hint?: string } | undefined;
  const out = value.replace(TAG, (_m, helper: string, a1?: string, a2?: string, d1?: string, d2?: string) => {
    const name = a1 ?? a2 ?? '';
    const fallback = d1 ?? d2;
    if (helper === 'env_var') {
      const v = env[name] ?? fallback;
      if (v === undefined) {
        error ??= { error: `environment variable ${name} is not set`, hint: `export ${name}=..., or give a default: {{env_var '${name}' 'default'}}` };
        return '';
      }
      if (env[name] !== undefined && name.startsWith(SECRET_ENV_PREFIX)) addDeclaredSecret(secrets, v);
      else if (env[name] !== undefined && (holdsSecret || SECRET_ENV_NAME.test(name))) addSecret(secrets, v);
      return v;
    }
    const v = vars[name] ?? fallback;
    if (v === undefined) {
      error ??= { error: `var "${name}" is not set`, hint: `set it under vars: in etl.yml or pass --vars '{"${name}": ...}'` };
      return '';
    }
    return String(v);
  });
  if (error) return error;
  if (holdsSecret) addSecret(secrets, out);
  return { value: out };
}

/**
 * Every ETL_ENV_SECRET_* variable of the environment, as secrets: masked
 * wherever they appear (an engine's error message, a setting echoed back),
 * whether or not a setting reads them. Values shorter than 3 characters are
 * not masked: hiding every "1" of the output would hide nothing.
 */
export function declaredSecrets(env: NodeJS.ProcessEnv, secrets: Secrets): void {
  for (const [name, value] of Object.entries(env)) if (name.startsWith(SECRET_ENV_PREFIX) && value) addDeclaredSecret(secrets, value);
}

/** A declared secret is masked whole, and, when it is a URL with a password, by that password too. */
function addDeclaredSecret(secrets: Secrets, value: string): void {
  if (value.length >= 3) secrets.values.add(value);
  addSecret(secrets, value);
}

function addSecret(secrets: Secrets, value: string): void {
  // The password inside a URL is the secret; the rest is not worth hiding.
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:([^@]*)@/i.exec(value);
  if (url && url[1]) secrets.values.add(decodeURIComponentSafe(url[1])).add(url[1]);
  else if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && value.length >= 3) secrets.values.add(value);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Replaces every known secret in `text` with ****. */
export function redact(text: string, secrets: Secrets | undefined): string {
  if (!secrets || secrets.values.size === 0) return text;
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const s of [...secrets.values].sort((a, b) => b.length - a.length)) if (s) out = out.split(s).join('****');
  return out;
}
