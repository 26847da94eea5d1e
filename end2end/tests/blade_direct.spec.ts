import { expect, test } from '@playwright/test';
import { ADMIN, MEMBER, signedIn } from './helpers';

// A blade's address loaded directly (a bookmark, a reload, a shared link) must hydrate
// every time, not only most times: the page is server-rendered and then hydrated, and a
// difference between the two (in what is rendered, or in the order its data is read)
// breaks the page. Ten loads in a row, each checked for hydration and a clean console.
test('a blade loaded directly hydrates every time (ten loads in a row)', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  await signedIn(page, ADMIN.email);
  for (let load = 1; load <= 10; load++) {
    await page.goto('/admin/members/2');
    await expect
      .poll(async () => (errors.length > 0 ? errors.join(' | ') : await page.locator('body').getAttribute('data-hydrated')), {
        message: `load ${load} hydrates`,
      })
      .toBe('true');
    const blade = page.getByRole('dialog', { name: 'User information' });
    await expect(blade.getByText(MEMBER.email)).toBeVisible();
    // Hydrated means the toolbar works: Edit opens the editor.
    await blade.getByRole('button', { name: 'Edit' }).click();
    await expect(blade.getByLabel('Display name')).toBeVisible();
    expect(errors, `load ${load}`).toEqual([]);
  }
});
