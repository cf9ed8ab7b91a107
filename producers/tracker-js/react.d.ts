// Types of @livemetrics/tracker/react (src/react.js).
import type { ComponentType, FunctionComponent, ReactNode } from "react";
import type { PageType, Tracker } from "./index.js";

export type PageDeclaration =
  | { pageType: "category"; category: string; offer?: string }
  | { pageType: "offer"; offer: string; category?: string }
  | { pageType: Exclude<PageType, "category" | "offer">; category?: string; offer?: string };

export interface MetricsProviderProps {
  /** Made by createTracker({..., pageViews: "manual"}). */
  tracker: Tracker;
  children?: ReactNode;
}

export declare function MetricsProvider(props: MetricsProviderProps): ReactNode;

/** The tracker; with `pageType`, also a page view when the component mounts and when its page or URL changes. */
export declare function useMetrics(page?: PageDeclaration | { pageType?: undefined }): Tracker;

export declare function withPageTracking<P extends object>(
  Component: ComponentType<P>,
  page: PageDeclaration | ((props: P) => PageDeclaration),
): FunctionComponent<P>;

export declare function withHomePageTracking<P extends object>(Component: ComponentType<P>): FunctionComponent<P>;
