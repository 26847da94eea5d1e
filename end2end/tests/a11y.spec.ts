import AxeBuilder from '@axe-core/playwright';
import { expect, Page, test } from '@playwright/test';
import { ADMIN, hydrated, signedIn } from './helpers';

/** Fails on any serious or critical axe-core violation, naming each. */
async function expectNoSeriousViolations(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const described = serious.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(described, described.join('\n')).toEqual([]);
}

test('the sign-in page has no serious accessibility violations', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await expectNoSeriousViolations(page);
});

test('the members list, the blade, its editor and the groups pages have no serious accessibility violations', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  await page.goto('/admin/members');
  await hydrated(page);
  await expect(page.getByRole('table', { name: 'Members' })).toBeVisible();
  await expectNoSeriousViolations(page);

  await page.goto('/admin/members/2');
  await hydrated(page);
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade.getByText('ann@e2e.test')).toBeVisible();
  await expectNoSeriousViolations(page);
  await blade.getByRole('button', { name: 'Edit' }).click();
  await expect(blade.getByLabel('Display name')).toBeVisible();
  await expectNoSeriousViolations(page);

  await page.goto('/admin/groups');
  await hydrated(page);
  await expect(page.getByRole('table', { name: 'Groups' })).toBeVisible();
  await expectNoSeriousViolations(page);
  await page.getByRole('table', { name: 'Groups' }).getByRole('link').first().click();
  await expect(page.getByRole('table', { name: 'Group members' })).toBeVisible();
  await expectNoSeriousViolations(page);
});
