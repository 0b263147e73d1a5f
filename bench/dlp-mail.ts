// Generated practice mail for the DLP benchmarks (moved here from the recognizer tests, whose timed runs were
// flaky on shared cores). Deterministic for a seed; it holds fake people and numbers only, never real data.

/** About `bytes` of practice mail: mostly office business, some clinical notes, with names, codes and numbers. */
export function makeMailCorpus(bytes: number, seed = 1): string {
  let x = seed >>> 0;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const num = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const first = [
    'Sophia',
    'Liam',
    'Olivia',
    'Noah',
    'Emma',
    'James',
    'Ava',
    'Lucas',
    'Mia',
    'Ethan',
    'Harper',
    'Mason',
    'Chloé',
    'Renée',
    'Søren',
    'Maria',
    'David',
    'Priya',
    'Wei',
    'Fatima',
  ];
  const last = [
    'Johnson',
    'Lee',
    'Garcia',
    'Smith',
    'Nguyen',
    'Patel',
    'Brown',
    'Martinez',
    'Kowalski',
    'Anderson',
    'Thompson',
    'Pérez',
    "O'Brien",
    'Harris',
  ];
  const name = () => `${pick(first)} ${pick(last)}`;
  const office = [
    () =>
      `Hi team,\n\nThe staff meeting is moved to ${pick(['Monday', 'Tuesday', 'Thursday'])} at ${num(1, 5)}pm in the break room. Please bring your laptops; we will go over the new phone system, the parking changes and the holiday schedule. Call ${name()} at 555-${num(100, 999)}-${num(1000, 9999)} if you cannot make it.\n\nThanks,\n${name()}\nOffice Manager\n`,
    () =>
      `Your order #${num(1e6, 9e6)} of exam gloves, masks and paper towels shipped today. Tracking: 1Z${num(1e8, 9e8)}. Questions? Reply to this e-mail or visit our website. Product code AB-${num(1000, 9999)}, SKU M365-B2B, Q3 2025 pricing applies.\n`,
    () =>
      `Reminder: your network password expires in 5 days. Change it at the intranet portal. If you need help, open a ticket with IT. Do not share your password with anyone, including ${name()} from the help desk.\n`,
    () =>
      `Annual HIPAA training is due by December 31. It covers PHI handling, encryption, secure e-mail and reporting incidents. The office will be cleaned on Saturday; please clear your desks. Will you grant ${pick(first)} access to the shared drive?\n`,
    () =>
      `Please welcome ${name()}, our new hygienist, starting Monday. ${pick(first)} comes to us from Riverside Family Dental and loves hiking. Extension ${num(100, 999)}.\n`,
    () =>
      `Newsletter: Brushing twice a day and flossing once a day prevents most cavities. Diabetes raises the risk of gum disease, so tell us about any changes in your health. Flu shots are available at the pharmacy next door.\n`,
  ];
  const clinical = [
    () =>
      `Patient ${name()} (DOB ${num(1, 12)}/${num(1, 28)}/19${num(50, 99)}) was seen today for ${pick(['hypertension', 'type 2 diabetes', 'asthma', 'depression', 'gingivitis', 'chronic periodontitis'])}. A1c 7.${num(0, 9)}%, LDL ${num(100, 190)}, BP 1${num(3, 5)}0/${num(80, 95)}. Dx ${pick(['E11.65', 'I10', 'F32.9', 'K05.10', 'J45.909'])}. Continue ${pick(['lisinopril 10 mg', 'metformin 500 mg', 'sertraline 50 mg', 'amoxicillin 500 mg'])}.\n`,
    () =>
      `Tx plan for ${name()}: ${pick(['D2740 crown on #14', 'D7210 surgical extraction of #32', 'D3330 root canal on #19', 'D4341 scaling and root planing UR'])} and D1110 prophylaxis. Insurance pre-authorization was sent to the claims department; patient copay is $${num(10, 300)}.\n`,
    () =>
      `Mrs. ${pick(last)} called about her ultrasound results. She is 12 weeks pregnant and was prescribed prenatal vitamins. Allergic to penicillin. Please call her back at 555-0199.\n`,
    () =>
      `Referring ${name()} to your practice for evaluation of ${pick(['migraine', 'sleep apnea', 'a cracked tooth', 'TMJ disorder'])}. Records and x-rays attached. CPT 99213, 99214.\n`,
  ];
  let out = '';
  while (out.length < bytes) out += `${(rnd() < 0.7 ? pick(office) : pick(clinical))()}\n`;
  return out.slice(0, bytes);
}

/** About `bytes` of practice mail: mostly office business, some clinical notes, with the numbers both kinds carry. */
export function makeMail(bytes: number, seed = 7): string {
  let x = seed >>> 0;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const num = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const first = [
    'Sophia',
    'Liam',
    'Olivia',
    'Noah',
    'Emma',
    'James',
    'Ava',
    'Lucas',
    'Mia',
    'Harper',
    'Chloé',
    'Søren',
    'Priya',
    'Wei',
  ];
  const last = [
    'Johnson',
    'Lee',
    'Garcia',
    'Smith',
    'Nguyen',
    'Patel',
    'Brown',
    'Kowalski',
    'Pérez',
    "O'Brien",
    'Harris',
  ];
  const name = () => `${pick(first)} ${pick(last)}`;
  const phone = () =>
    pick([
      `(555) ${num(200, 999)}-${num(1000, 9999)}`,
      `555-${num(200, 999)}-${num(1000, 9999)}`,
      `+1 555 ${num(200, 999)} ${num(1000, 9999)}`,
    ]);
  const date = () => `${num(1, 12)}/${num(1, 28)}/${num(1930, 2024)}`;
  const office = [
    () =>
      `Hi team,\n\nThe staff meeting is moved to ${pick(['Monday', 'Tuesday', 'Thursday'])} at ${num(1, 5)}pm (${num(1, 4)}:30-${num(5, 6)}:45) in the break room. Please bring your laptops; we will go over the new phone system, the parking changes and the holiday schedule. Call ${name()} at ${phone()} if you cannot make it.\n\nThanks,\n${name()}\nOffice Manager\n`,
    () =>
      `Your order #${num(1e6, 9e6)} of exam gloves shipped on ${date()} for $${num(100, 999)}.${num(10, 99)}. Tracking: 1Z${num(1e8, 9e8)}. Invoice ${num(1e8, 9e8)} is due in 30 days. Product code AB-${num(1000, 9999)}, version ${num(1, 9)}.${num(0, 20)}.${num(0, 9)}. Questions? Write to orders@supplier.example or visit https://supplier.example/orders.\n`,
    () =>
      `Reminder: your network password expires in 5 days. Change it at the intranet portal (www.intranet.example). If you need help, open a ticket with IT at extension ${num(100, 999)}. Do not share your password with anyone.\n`,
    () =>
      `Annual HIPAA training is due by December 31. It covers PHI handling, encryption, secure e-mail and reporting incidents. The office at ${num(100, 999)} Main Street, Suite ${num(100, 400)}, Springfield, IL 62701 will be closed on Saturday.\n`,
    () =>
      `Please welcome ${name()}, our new hygienist, starting Monday. ${pick(first)} comes to us from Riverside Family Dental, where the team saw ${num(20, 90)} patients a day. Room ${num(1, 12)} is hers.\n`,
  ];
  const clinical = [
    () =>
      `Patient ${name()} (DOB ${date()}, MRN: ${num(1e6, 9e6)}) was seen on ${date()} for follow-up. Insurance member ID W${num(1e8, 9e8)}. Please call her at ${phone()} or e-mail ${pick(first).toLowerCase()}.${pick(
        last,
      )
        .toLowerCase()
        .replace(/[^a-z]/g, '')}@mail.example; fax results to ${phone()}.\n`,
    () =>
      `${name()} lives at ${num(10, 9999)} ${pick(['Oak', 'Maple', 'Cedar', 'Elm'])} ${pick(['Avenue', 'Street', 'Road', 'Drive'])}, Apt ${num(1, 20)}B, Springfield, IL 627${num(10, 99)}. SSN ${num(100, 665)}-${num(10, 99)}-${num(1000, 9999)} on file for billing; claim # ${num(1e7, 9e7)}.\n`,
    () =>
      `Referring ${name()}, a ${num(91, 99)}-year-old, to your practice. Prior auth # PA${num(1e5, 9e5)}. Provider NPI 1234567893. Records attached.\n`,
  ];
  let out = '';
  while (out.length < bytes) out += `${(rnd() < 0.7 ? pick(office) : pick(clinical))()}\n`;
  return out.slice(0, bytes);
}
