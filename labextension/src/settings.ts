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
