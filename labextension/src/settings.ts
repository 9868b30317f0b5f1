/** The views' settings, from the settings registry (schema/plugin.json). */
export interface IViewSettings {
  /** Price region shown with the prices. */
  priceRegion: string;
  /** Seconds between refreshes of the ticking cost in the views. */
  refreshInterval: number;
}

export const DEFAULT_VIEW_SETTINGS: IViewSettings = {
  priceRegion: 'us-east-1',
  refreshInterval: 1
};

/** Everything schema/plugin.json holds. */
export interface IExtensionSettings {
  view: IViewSettings;
  /** Instance type set in each kernel once; empty keeps the kernel's own. */
  defaultInstance: string;
}

/**
 * The settings from the registry's composite. A value the registry let
 * through but the views cannot use (empty region, non-positive interval)
 * falls back to the default rather than breaking the meter.
 */
export function readSettings(
  composite: Record<string, unknown>
): IExtensionSettings {
  const interval = Number(composite.refreshInterval);
  return {
    view: {
      priceRegion:
        typeof composite.priceRegion === 'string' && composite.priceRegion
          ? composite.priceRegion
          : DEFAULT_VIEW_SETTINGS.priceRegion,
      refreshInterval:
        Number.isFinite(interval) && interval > 0
          ? interval
          : DEFAULT_VIEW_SETTINGS.refreshInterval
    },
    defaultInstance:
      typeof composite.defaultInstance === 'string'
        ? composite.defaultInstance
        : ''
  };
}
