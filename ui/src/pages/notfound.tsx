import { Page } from '../components/layout';
import { Empty } from '../components/ui';
import { Link } from '../router';

export function NotFound({ what = 'page' }: { what?: string }) {
  return (
    <Page title="Not found">
      <div class="panel">
        <Empty title={`This ${what} does not exist`}>
          <span>It may have been deleted, or it belongs to another tenant.</span>
          <Link href="/">Go to the start page</Link>
        </Empty>
      </div>
    </Page>
  );
}
