// Where the server started by global-setup.ts listens (inherited through the environment).
function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: the browser tests must run through playwright.config.ts (globalSetup starts the server)`);
  return v;
}

export const server = {
  get url(): string {
    return need('SW_E2E_URL');
  },
  get mqttPort(): number {
    return Number(need('SW_E2E_MQTT_PORT'));
  },
  get adminPassword(): string {
    return need('SW_E2E_ADMIN_PASSWORD');
  },
  get log(): string {
    return process.env.SW_E2E_LOG ?? '';
  },
};

/** A name no other spec (or earlier run) uses. */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export const PASSWORD = 's3cret-Passw0rd';
