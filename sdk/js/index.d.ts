// Types for the Sluice SDK (bundler entry `load`, and `window.sluice` once loaded).

export type Properties = Record<string, unknown>;

export interface CallOptions {
  /** When it happened (ms since the epoch or an ISO 8601 string); default now. */
  timestamp?: number | string;
  /** Your own messageId (idempotency key); default a UUID. */
  messageId?: string;
  /** Merged into the event's context. */
  context?: Properties;
  integrations?: Record<string, boolean | Properties>;
}

export type Purpose = "necessary" | "analytics" | "functional" | "personalization" | "marketing" | "sale_sharing" | (string & {});

export interface Options {
  /** Collector origin; default this page's origin (first-party). */
  apiHost?: string;
  /** Default "/v1/batch". */
  apiPath?: string;
  /** With a `flushIntervalMs`: send as soon as this many events are waiting (default 20). */
  flushAt?: number;
  /** How long an idle SDK waits to batch events before sending (default 0: real time, an event goes
   * at once when no request is in flight; what arrives during a request goes in the next one). */
  flushIntervalMs?: number;
  /** Consecutive failed attempts before retries pause until `online` or the next page (default 10). */
  maxRetries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Queue bound; the oldest events are evicted and counted beyond it (default 10000). */
  maxQueueEvents?: number;
  /** "cookie" (cookie + localStorage, default), "localStorage", "memory", or "none" (cookieless until storage consent). */
  storage?: "cookie" | "localStorage" | "memory" | "none";
  /** Default: the registrable domain, so subdomains share the id. */
  cookieDomain?: string;
  cookieSameSite?: "Lax" | "Strict" | "None";
  /** Default: true on HTTPS pages. */
  cookieSecure?: boolean;
  /** Page views on pushState / replaceState / popstate (default false). */
  trackPages?: boolean;
  /** Inactivity that starts a new session (default 30 min). */
  sessionTimeoutMs?: number;
  consent?: {
    /** Purposes an event needs (default ["analytics"]). */
    required?: Purpose[];
    /** Before consent is known: hold events ("wait", default), send them without identifiers ("anonymous"), or "drop" them. */
    pending?: "wait" | "anonymous" | "drop";
    /** Treat consent as given from the start (where no consent is required). */
    defaultGranted?: boolean;
    policyVersion?: string;
  };
  policyVersion?: string;
  /** The collector's id endpoint (e.g. "/sluice/v1/id"): sets the id as a server cookie. */
  idEndpoint?: string;
  debug?: boolean;
}

export interface ConsentState {
  categories: Record<string, "granted" | "denied" | "unknown">;
  source: "explicit" | "tcf" | "gpp" | "gcm" | "gpc" | "default";
  policyVersion?: string;
  updatedAt?: string;
  gpc?: boolean;
  known: boolean;
}

/** The event's messageId: give it to an on-page pixel as its event id (Meta `eventID`,
 * gtag `event_id`, TikTok `event_id`) so the vendor keeps one of the browser and server events.
 * `undefined` when the call's values cannot be serialised (the event is dropped). */
export type MessageId = string | undefined;

export interface Sluice {
  track(event: string, properties?: Properties, options?: CallOptions): MessageId;
  page(category?: string, name?: string, properties?: Properties, options?: CallOptions): MessageId;
  page(name?: string, properties?: Properties, options?: CallOptions): MessageId;
  screen(name: string, properties?: Properties, options?: CallOptions): MessageId;
  identify(userId?: string | null, traits?: Properties, options?: CallOptions): MessageId;
  identify(traits: Properties, options?: CallOptions): MessageId;
  group(groupId: string, traits?: Properties, options?: CallOptions): MessageId;
  alias(userId: string, previousId?: string, options?: CallOptions): MessageId;
  reset(): void;
  user(): { anonymousId: string; userId: string | null; traits: Properties };
  anonymousId(): string;
  debug(on: boolean): void;
  flush(): void;
  stats(): { queued: number; dropped: number };
  /** The (browser-visible) audiences the visitor is in, as of the collector's last answer. */
  audiences(): string[];
  /** The browser-visible computed traits. */
  traits(): Record<string, unknown>;
  /** Called after an answer in which the visitor's audiences changed. */
  on(kind: "audience", callback: (change: AudienceChange) => void): void;
  consent: {
    set(choice: Partial<Record<Purpose, boolean>>): void;
    get(): ConsentState;
    on(callback: (consent: ConsentState) => void): void;
  };
}

export interface AudienceChange {
  audiences: string[];
  traits: Record<string, unknown>;
}

/** Errors thrown on misuse carry a stable `code`. */
export interface SluiceError extends Error {
  code: "not_loaded" | "invalid_options" | "invalid_argument" | "invalid_consent";
}

export function load(writeKey: string, options?: Options): Promise<Sluice>;
