import { Signal } from '@lumino/signaling';

import { KernelModel, Request } from '../model';
import { NotebookConnectors } from '../notebookConnectors';
import { DEFAULT_VIEW_SETTINGS } from '../settings';
import { kernelState } from './fixture';

/** The parts of a NotebookPanel the service uses. */
class FakePanel {
  constructor(readonly name: string) {}
  readonly disposed = new Signal<this, void>(this);
  dispose(): void {
    this.disposed.emit();
  }
}

/** The parts of a KernelConnector the service uses. */
class FakeConnector {
  constructor(readonly panel: FakePanel) {
    this.model = new KernelModel({ idPrefix: panel.name });
    this.kernel = { id: `kernel-${panel.name}` };
  }
  readonly model: KernelModel;
  readonly kernel: { id: string };
  isDisposed = false;
  dispose(): void {
    this.isDisposed = true;
  }
}

/** A notebook tracker that the test drives by hand. */
class FakeTracker {
  currentWidget: FakePanel | null = null;
  readonly widgetAdded = new Signal<this, FakePanel>(this);
  readonly currentChanged = new Signal<this, FakePanel | null>(this);

  open(panel: FakePanel): void {
    this.currentWidget = panel;
    this.widgetAdded.emit(panel);
  }

  activate(panel: FakePanel | null): void {
    this.currentWidget = panel;
    this.currentChanged.emit(panel);
  }
}

const nameOf = (connector: unknown) =>
  connector ? (connector as FakeConnector).panel.name : null;

function setUp() {
  const tracker = new FakeTracker();
  const connectors = new NotebookConnectors({
    tracker: tracker as any,
    create: panel => new FakeConnector(panel as any) as any
  });
  const shown: Array<string | null> = [];
  connectors.currentChanged.connect((_, connector) =>
    shown.push(nameOf(connector))
  );
  return { tracker, connectors, shown };
}

describe('NotebookConnectors', () => {
  it('gives each opened notebook its connector', () => {
    const { tracker, connectors } = setUp();
    const added: string[] = [];
    connectors.added.connect((_, { panel, connector }) => {
      expect(connectors.get(panel as any)).toBe(connector);
      added.push((panel as any).name);
    });
    const a = new FakePanel('a');
    const b = new FakePanel('b');
    tracker.open(a);
    tracker.open(b);
    expect(added).toEqual(['a', 'b']);
    expect(nameOf(connectors.get(a as any))).toBe('a');
    expect(connectors.get(null)).toBeNull();
    expect(nameOf(connectors.current)).toBe('b');
  });

  it('follows the active notebook', () => {
    const { tracker, connectors, shown } = setUp();
    const a = new FakePanel('a');
    const b = new FakePanel('b');
    tracker.open(a);
    tracker.open(b);
    tracker.activate(a);
    tracker.activate(a);
    tracker.activate(null);
    expect(shown).toEqual(['a', 'b', 'a', null]);
    expect(connectors.current).toBeNull();
  });

  it('announces a notebook made current before it was added', () => {
    const { tracker, shown } = setUp();
    const a = new FakePanel('a');
    tracker.activate(a);
    expect(shown).toEqual([]);
    tracker.open(a);
    expect(shown).toEqual(['a']);
  });

  it('moves on when the active notebook closes', () => {
    const { tracker, connectors, shown } = setUp();
    const a = new FakePanel('a');
    const b = new FakePanel('b');
    tracker.open(a);
    tracker.open(b);
    const closing = connectors.current as unknown as FakeConnector;
    tracker.currentWidget = a;
    b.dispose();
    expect(closing.isDisposed).toBe(true);
    expect(connectors.get(b as any)).toBeNull();
    expect(shown).toEqual(['a', 'b', 'a']);
    // Closing a notebook that is not shown changes nothing.
    const c = new FakePanel('c');
    tracker.open(c);
    a.dispose();
    expect(shown).toEqual(['a', 'b', 'a', 'c']);
    expect(nameOf(connectors.current)).toBe('c');
  });

  it('shares the settings and sets the default instance type', () => {
    const { tracker, connectors } = setUp();
    const seen: unknown[] = [];
    connectors.settingsChanged.connect((_, settings) => seen.push(settings));
    expect(connectors.settings).toEqual(DEFAULT_VIEW_SETTINGS);
    const view = { priceRegion: 'eu-west-1', refreshInterval: 2 };
    connectors.configure({ view, defaultInstance: 'ml.m5.large' });
    expect(connectors.settings).toEqual(view);
    expect(seen).toEqual([view]);

    const a = new FakePanel('a');
    tracker.open(a);
    const model = connectors.get(a as any)!.model;
    const sent: Request[] = [];
    model.connecting(r => sent.push(r));
    model.handleMessage({
      v: 1,
      type: 'reply',
      id: 'open',
      state: kernelState('empty')
    });
    expect(sent.filter(r => r.type === 'set-instance')).toEqual([
      expect.objectContaining({ instance: 'ml.m5.large' })
    ]);
  });
});
