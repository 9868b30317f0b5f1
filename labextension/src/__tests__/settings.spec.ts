import { DEFAULT_VIEW_SETTINGS, readSettings } from '../settings';

describe('readSettings', () => {
  it('reads the values of schema/plugin.json', () => {
    expect(
      readSettings({
        defaultInstance: 'ml.m5.large',
        priceRegion: 'eu-west-1',
        refreshInterval: 0.5
      })
    ).toEqual({
      view: { priceRegion: 'eu-west-1', refreshInterval: 0.5 },
      defaultInstance: 'ml.m5.large'
    });
  });

  it('falls back to the defaults for missing or unusable values', () => {
    const defaults = {
      view: DEFAULT_VIEW_SETTINGS,
      defaultInstance: ''
    };
    expect(readSettings({})).toEqual(defaults);
    expect(
      readSettings({
        defaultInstance: 3,
        priceRegion: '',
        refreshInterval: 0
      })
    ).toEqual(defaults);
    expect(readSettings({ refreshInterval: -1 }).view.refreshInterval).toBe(
      DEFAULT_VIEW_SETTINGS.refreshInterval
    );
    expect(readSettings({ refreshInterval: 'soon' }).view.refreshInterval).toBe(
      DEFAULT_VIEW_SETTINGS.refreshInterval
    );
  });
});
