// The analytics screens (issue 5), bundled as one chunk loaded on first use (analytics-lazy.tsx)
// so the app's start-up code does not grow with them.
export { AlarmsPage } from '../pages/alarms';
export { DetectorsPage } from '../pages/detectors';
export { RulesPage } from '../pages/rules';
export { WebhooksPage } from '../pages/webhooks';
export { DeviceAnalytics } from './device-analytics';
