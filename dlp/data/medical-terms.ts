// Health vocabulary for dlp/recognizers/health.ts: conditions, medications, procedures, lab tests, clinical phrases
// and care-context words, with scores. Hand-written from general clinical and dental vocabulary (not fitted to a
// corpus); no third-party data. Entries are separated by '|'; a space or hyphen inside an entry matches a space,
// hyphen or slash in text ("x-ray" = "x ray"), a final plural "s"/"es"/"ies" matches too, and "'s" is ignored.
//
// Scores follow the rules' default minScore 0.5: a specific term counts alone (≥ 0.6); a word with everyday
// meanings in office mail ("crown", "cleaning", "shot", "cold", "screening") is `weak`: it is reported (at 0.6)
// only with a second signal near (see health.ts), so it never makes a message PHI by itself. Words too generic
// even for that ("test", "positive", "plan", "treatment" as a health fact) are left out. Staff roles (hygienist,
// nurse, dentist, doctor, assistant) are deliberately in no list: a welcome mail for a new hygienist is clean.

export type TermType = 'CONDITION' | 'MEDICATION' | 'PROCEDURE' | 'HEALTH_PHRASE' | 'CARE_CONTEXT' | 'LAB';

/** Which second signals raise a weak term: any health term, or (for dental words) also dental cues like "tooth". */
export type Support = 'health' | 'dental';

export interface TermGroup {
  type: TermType;
  /** Score of a term alone (weak terms: before support). */
  score: number;
  /** Weak: counts (at `supportedScore`, default 0.6) only with a second signal near. */
  weak?: Support;
  supportedScore?: number;
  /** LAB only: the value a test needs to be a LAB_RESULT. */
  value?: 'number' | 'pressure';
  terms: string;
}

export const TERM_GROUPS: readonly TermGroup[] = [
  // ── Conditions and diagnoses ──────────────────────────────────────────────────────────────────────────────
  {
    type: 'CONDITION',
    score: 0.75,
    terms: `hypertension|high blood pressure|hypotension|diabetes|diabetes mellitus|type 1 diabetes|type 2 diabetes|
      diabetic|prediabetes|gestational diabetes|hyperlipidemia|high cholesterol|hypercholesterolemia|dyslipidemia|
      hypothyroidism|hyperthyroidism|hashimoto's|graves disease|thyroid disease|thyroid cancer|goiter|obesity|morbid obesity|
      asthma|copd|emphysema|chronic bronchitis|bronchitis|pneumonia|tuberculosis|cystic fibrosis|sleep apnea|
      obstructive sleep apnea|pulmonary fibrosis|coronary artery disease|heart disease|heart failure|
      congestive heart failure|atrial fibrillation|afib|a-fib|arrhythmia|myocardial infarction|heart attack|angina|
      cardiomyopathy|heart murmur|mitral valve prolapse|transient ischemic attack|aneurysm|deep vein thrombosis|dvt|
      pulmonary embolism|peripheral artery disease|blood clot|anemia|sickle cell|sickle cell disease|hemophilia|
      thrombocytopenia|leukemia|lymphoma|hodgkin's lymphoma|melanoma|carcinoma|basal cell carcinoma|
      squamous cell carcinoma|sarcoma|myeloma|multiple myeloma|breast cancer|prostate cancer|lung cancer|colon cancer|
      colorectal cancer|skin cancer|oral cancer|throat cancer|pancreatic cancer|ovarian cancer|cervical cancer|
      bladder cancer|kidney cancer|liver cancer|brain tumor|malignancy|malignant|metastatic|metastasis|neoplasm|
      major depressive disorder|depressive disorder|clinical depression|postpartum depression|bipolar disorder|
      schizophrenia|schizoaffective disorder|anxiety disorder|generalized anxiety disorder|panic disorder|panic attacks|
      ptsd|post-traumatic stress disorder|obsessive-compulsive disorder|adhd|attention deficit disorder|autism|
      autism spectrum disorder|asperger's|eating disorder|anorexia|anorexia nervosa|bulimia|binge eating disorder|
      insomnia|dementia|alzheimer's|alzheimer's disease|parkinson's|parkinson's disease|multiple sclerosis|epilepsy|
      seizure disorder|seizures|migraine|migraines|neuropathy|peripheral neuropathy|neuralgia|trigeminal neuralgia|
      bell's palsy|cerebral palsy|concussion|traumatic brain injury|spinal cord injury|paralysis|paraplegia|
      quadriplegia|arthritis|osteoarthritis|rheumatoid arthritis|psoriatic arthritis|gout|lupus|fibromyalgia|
      osteoporosis|osteopenia|scoliosis|herniated disc|sciatica|carpal tunnel syndrome|tendonitis|bursitis|
      chronic pain|chronic kidney disease|kidney disease|ckd|renal failure|kidney failure|end-stage renal disease|
      kidney stones|urinary tract infection|uti|incontinence|liver disease|cirrhosis|hepatitis|hepatitis a|hepatitis b|
      hepatitis c|hep b|hep c|fatty liver|pancreatitis|gerd|acid reflux|peptic ulcer|stomach ulcer|crohn's|
      crohn's disease|ulcerative colitis|colitis|irritable bowel syndrome|ibs|celiac disease|diverticulitis|gallstones|
      appendicitis|hernia|hiv|hiv positive|hiv/aids|sexually transmitted infection|sexually transmitted disease|
      chlamydia|gonorrhea|syphilis|herpes|genital herpes|hpv|genital warts|covid-19|sars-cov-2|long covid|influenza|
      strep throat|mononucleosis|shingles|chickenpox|measles|mumps|whooping cough|pertussis|sepsis|mrsa|c. diff|
      clostridium difficile|abscess|cellulitis|lyme disease|pregnancy|pregnant|high-risk pregnancy|miscarriage|
      stillbirth|ectopic pregnancy|preeclampsia|pre-eclampsia|placenta previa|first trimester|second trimester|
      third trimester|infertility|endometriosis|pcos|polycystic ovary syndrome|uterine fibroids|erectile dysfunction|
      benign prostatic hyperplasia|bph|enlarged prostate|glaucoma|cataract|cataracts|macular degeneration|
      diabetic retinopathy|retinopathy|hearing loss|tinnitus|vertigo|meniere's disease|eczema|psoriasis|dermatitis|
      rosacea|anaphylaxis|food allergy|peanut allergy|latex allergy|penicillin allergy|drug allergy|
      substance use disorder|alcohol use disorder|alcoholism|alcohol dependence|drug addiction|opioid use disorder|
      opioid addiction|overdose|suicidal|suicidal ideation|suicide attempt|self-harm|malnutrition|dehydration|
      hypoglycemia|hyperglycemia|ketoacidosis|lymphedema|edema|down syndrome|spina bifida|muscular dystrophy|
      amyotrophic lateral sclerosis|lou gehrig's disease|huntington's disease|hydrocephalus|developmental delay|
      terminal illness|terminally ill|osteoarthritis of knee|osteomyelitis|osteonecrosis|osteonecrosis of the jaw|
      stroke patient|cerebrovascular accident|brain injury|heart condition|kidney infection|bladder infection|
      yeast infection|ear infection|sinus infection|sinusitis|tonsillitis|conjunctivitis|pink eye|
      high-risk|immunocompromised|chronic fatigue syndrome|sjogren's syndrome|sjögren's syndrome|scleroderma|
      hemorrhoids|anal fissure|rectal bleeding|gastroparesis|barrett's esophagus|esophagitis|hiatal hernia|
      postpartum|post-partum|preterm labor|premature birth|gestational hypertension|morning sickness|
      anemia of pregnancy|hyperemesis|nicotine dependence|tobacco use disorder`,
  },
  // Dental conditions.
  {
    type: 'CONDITION',
    score: 0.75,
    terms: `periodontitis|chronic periodontitis|periodontal disease|gum disease|gingivitis|caries|dental caries|
      tooth decay|recurrent decay|abscessed tooth|tooth abscess|dental abscess|periapical abscess|periodontal abscess|
      pulpitis|irreversible pulpitis|reversible pulpitis|necrotic pulp|pulp necrosis|cracked tooth|cracked tooth syndrome|
      fractured tooth|broken tooth|chipped tooth|impacted tooth|impacted wisdom teeth|impacted wisdom tooth|
      impacted third molar|malocclusion|bruxism|tmj disorder|tmd|temporomandibular joint disorder|dry socket|
      alveolar osteitis|edentulous|edentulism|bone loss|gum recession|gingival recession|receding gums|
      tooth sensitivity|oral thrush|canker sore|cold sore|oral lesion|leukoplakia|xerostomia|dry mouth|halitosis|
      dental fluorosis|enamel erosion|pericoronitis|peri-implantitis|oral mucositis|bleeding gums|swollen gums|
      toothache|tooth pain|jaw pain|facial swelling|failed root canal|failing restoration|open contact|
      periapical lesion|periapical radiolucency|furcation involvement|tooth mobility|root resorption|
      cavity|cavities|tooth loss|missing teeth`,
  },
  // Symptoms and findings: health facts in practice mail.
  {
    type: 'CONDITION',
    score: 0.6,
    terms: `shortness of breath|chest pain|back pain|lower back pain|neck pain|knee pain|abdominal pain|stomach pain|
      palpitations|wheezing|syncope|fainting|blurred vision|numbness|tingling|nausea|vomiting|diarrhea|constipation|
      fever|high fever|chills|persistent cough|cough|sore throat|dizziness|lightheadedness|hives|swelling|
      blood in urine|blood in stool|unexplained weight loss|night sweats|lesion|lesions|tumor|tumour|tumors|fracture|
      broken arm|broken leg|broken wrist|broken ankle|broken hip|broken nose|sprained ankle|torn acl|torn meniscus|
      rotator cuff tear|dislocated shoulder|laceration|wound infection|allergic reaction|depression|remission|
      relapse|cancer|benign tumor|cyst|polyp|polyps|nodule|bipolar|suicidal thoughts|panic attack|eating disorders|
      flare-up|migraine headache|ear infection|kidney infection|bladder infection|sinus infection|yeast infection`,
  },
  // Everyday words that are health facts only next to another signal ("the flu" vs "Sophia has the flu, dx …").
  {
    type: 'CONDITION',
    score: 0.35,
    weak: 'health',
    terms: `pain|headache|headaches|flu|the flu|cold|a cold|common cold|virus|covid|coronavirus|allergy|allergies|acne|
      sore|injury|injured|sick|illness|disease|disability|learning disability|obese|overweight|mole|strep|mono|
      reflux|ulcer|decay|sensitivity|bad breath|recession|impaction|overbite|underbite|crossbite|clenching|grinding|
      due date|menopause|prostate|thyroid|rash|mass|lump|wound|burns|bleeding|infection|inflammation|infected|
      contagious|fatigue|stroke|seizure|anxiety|depressed|fractured|weight loss|diagnosis|diagnoses|prognosis|
      symptoms|symptom|sprain|condition|chronic|acute|terminal illness|sick leave|medical leave`,
  },

  // ── Medications ───────────────────────────────────────────────────────────────────────────────────────────
  {
    type: 'MEDICATION',
    score: 0.7,
    terms: `atorvastatin|lipitor|simvastatin|zocor|rosuvastatin|crestor|pravastatin|lovastatin|ezetimibe|zetia|
      lisinopril|zestril|prinivil|enalapril|ramipril|benazepril|quinapril|losartan|cozaar|valsartan|diovan|irbesartan|
      olmesartan|telmisartan|amlodipine|norvasc|nifedipine|diltiazem|verapamil|metoprolol|lopressor|toprol|atenolol|
      carvedilol|coreg|propranolol|bisoprolol|labetalol|nebivolol|hydrochlorothiazide|hctz|chlorthalidone|furosemide|
      lasix|spironolactone|bumetanide|torsemide|triamterene|clonidine|hydralazine|metformin|glucophage|glipizide|
      glyburide|glimepiride|pioglitazone|sitagliptin|januvia|janumet|empagliflozin|jardiance|dapagliflozin|farxiga|
      canagliflozin|invokana|liraglutide|victoza|saxenda|semaglutide|ozempic|wegovy|rybelsus|dulaglutide|trulicity|
      tirzepatide|mounjaro|zepbound|insulin|insulin glargine|insulin lispro|insulin aspart|lantus|basaglar|toujeo|
      humalog|novolog|levemir|tresiba|humulin|novolin|levothyroxine|synthroid|levoxyl|liothyronine|armour thyroid|
      methimazole|propylthiouracil|warfarin|coumadin|jantoven|apixaban|eliquis|rivaroxaban|xarelto|dabigatran|
      pradaxa|clopidogrel|plavix|prasugrel|ticagrelor|brilinta|heparin|enoxaparin|lovenox|digoxin|amiodarone|
      nitroglycerin|isosorbide|ranolazine|sacubitril|entresto|albuterol|proair|ventolin|proventil|levalbuterol|
      fluticasone|flovent|advair|symbicort|breo|budesonide|pulmicort|montelukast|singulair|tiotropium|spiriva|
      ipratropium|prednisone|prednisolone|methylprednisolone|medrol|dexamethasone|hydrocortisone|triamcinolone|
      sertraline|zoloft|fluoxetine|prozac|citalopram|celexa|escitalopram|lexapro|paroxetine|paxil|venlafaxine|
      effexor|desvenlafaxine|pristiq|duloxetine|cymbalta|bupropion|wellbutrin|mirtazapine|remeron|trazodone|
      amitriptyline|nortriptyline|doxepin|buspirone|buspar|vortioxetine|trintellix|alprazolam|xanax|lorazepam|
      ativan|clonazepam|klonopin|diazepam|valium|temazepam|zolpidem|ambien|eszopiclone|lunesta|quetiapine|seroquel|
      aripiprazole|abilify|risperidone|risperdal|olanzapine|zyprexa|ziprasidone|lurasidone|latuda|haloperidol|
      clozapine|lithium carbonate|lamotrigine|lamictal|valproate|valproic acid|depakote|divalproex|carbamazepine|
      tegretol|oxcarbazepine|trileptal|levetiracetam|keppra|topiramate|topamax|zonisamide|gabapentin|neurontin|
      pregabalin|lyrica|phenytoin|dilantin|phenobarbital|methylphenidate|ritalin|concerta|adderall|amphetamine|
      dextroamphetamine|lisdexamfetamine|vyvanse|atomoxetine|strattera|guanfacine|donepezil|aricept|memantine|
      namenda|rivastigmine|carbidopa|levodopa|sinemet|ropinirole|pramipexole|sumatriptan|imitrex|rizatriptan|maxalt|
      zolmitriptan|ubrogepant|nurtec|rimegepant|ondansetron|zofran|promethazine|phenergan|metoclopramide|reglan|
      omeprazole|prilosec|pantoprazole|protonix|esomeprazole|nexium|lansoprazole|prevacid|rabeprazole|famotidine|
      pepcid|ranitidine|sucralfate|misoprostol|mesalamine|lialda|infliximab|remicade|adalimumab|humira|etanercept|
      enbrel|ustekinumab|stelara|dupilumab|dupixent|methotrexate|hydroxychloroquine|plaquenil|sulfasalazine|
      leflunomide|azathioprine|mycophenolate|tacrolimus|cyclosporine|allopurinol|colchicine|febuxostat|alendronate|
      fosamax|risedronate|actonel|ibandronate|boniva|zoledronic acid|reclast|zometa|denosumab|prolia|xgeva|
      bisphosphonate|bisphosphonates|raloxifene|tamsulosin|flomax|finasteride|proscar|dutasteride|oxybutynin|
      tolterodine|mirabegron|myrbetriq|sildenafil|viagra|tadalafil|cialis|estradiol|premarin|medroxyprogesterone|
      depo-provera|norethindrone|levonorgestrel|birth control pills|oral contraceptive|oral contraceptives|
      nuvaring|nexplanon|mirena|clomiphene|clomid|letrozole|anastrozole|arimidex|exemestane|tamoxifen|
      cyclophosphamide|doxorubicin|cisplatin|carboplatin|paclitaxel|docetaxel|fluorouracil|capecitabine|xeloda|
      pembrolizumab|keytruda|nivolumab|opdivo|trastuzumab|herceptin|rituximab|bevacizumab|avastin|imatinib|gleevec|
      ibrutinib|lenalidomide|revlimid|amoxicillin|amoxil|augmentin|amoxicillin-clavulanate|azithromycin|z-pak|z-pack|
      zithromax|cephalexin|keflex|cefdinir|cefuroxime|ceftriaxone|rocephin|ciprofloxacin|cipro|levofloxacin|levaquin|
      moxifloxacin|doxycycline|minocycline|tetracycline|clindamycin|cleocin|metronidazole|flagyl|nitrofurantoin|
      macrobid|sulfamethoxazole|trimethoprim|bactrim|vancomycin|penicillin|penicillin vk|erythromycin|clarithromycin|
      linezolid|rifampin|isoniazid|fluconazole|diflucan|nystatin|clotrimazole|terbinafine|acyclovir|zovirax|
      valacyclovir|valtrex|famciclovir|oseltamivir|tamiflu|paxlovid|nirmatrelvir|remdesivir|molnupiravir|
      antiretroviral|antiretrovirals|truvada|descovy|biktarvy|genvoya|tenofovir|emtricitabine|dolutegravir|
      tivicay|efavirenz|sofosbuvir|harvoni|epclusa|hydrocodone|vicodin|norco|lortab|oxycodone|percocet|oxycontin|
      morphine|fentanyl|hydromorphone|dilaudid|oxymorphone|tapentadol|tramadol|ultram|codeine|tylenol with codeine|
      tylenol #3|buprenorphine|suboxone|subutex|naloxone|narcan|naltrexone|vivitrol|methadone|meloxicam|mobic|
      celecoxib|celebrex|diclofenac|voltaren|ketorolac|toradol|indomethacin|etodolac|nabumetone|cyclobenzaprine|
      flexeril|methocarbamol|robaxin|baclofen|tizanidine|zanaflex|carisoprodol|soma|articaine|septocaine|
      mepivacaine|carbocaine|bupivacaine|marcaine|prilocaine|novocaine|oraqix|chlorhexidine|chlorhexidine gluconate|
      peridex|periogard|prevident|silver diamine fluoride|arestin|atridox|periostat|epinephrine|epipen|epi-pen|
      hydroxyzine|atarax|vistaril|antibiotics|antibiotic|antivirals|antiviral|antidepressant|antidepressants|
      antipsychotic|antipsychotics|anticoagulant|anticoagulants|blood thinner|blood thinners|beta blocker|
      beta blockers|ace inhibitor|statin|statins|chemotherapy drugs|opioid|opioids|opiates|narcotic|narcotics|
      painkillers|pain medication|pain meds|steroids|corticosteroids|immunosuppressants|biologics|insulin pump|
      prenatal vitamins|prenatal vitamin|prenatals|methylfolate|ferrous sulfate|iron supplements|potassium chloride|
      nitrofurantoin|estrogen therapy|hormone therapy|hormone replacement therapy|hrt|testosterone therapy|
      testosterone cypionate|androgel|accutane|isotretinoin|tretinoin|retin-a|spironolactone|ivermectin|
      hydroxyurea|sickle cell medication|inhaler|rescue inhaler|nebulizer|cpap|cpap machine|bipap|oxygen therapy|
      home oxygen|prescribed medication`,
  },
  {
    type: 'MEDICATION',
    score: 0.5,
    terms: `ibuprofen|acetaminophen|naproxen|motrin|tylenol|aleve|advil|aspirin|baby aspirin|excedrin|lidocaine|
      benzocaine|nitrous oxide|laughing gas|cetirizine|zyrtec|loratadine|claritin|fexofenadine|diphenhydramine|
      benadryl|loperamide|imodium|docusate|miralax|polyethylene glycol|folic acid|vitamin b12|b12 injection|
      b12 injections|b12 shots|antihistamine|antihistamines|cough syrup|decongestant|sudafed|
      pseudoephedrine|dramamine|meclizine|orajel|anbesol|fluoride rinse|
      prescription strength fluoride`,
  },
  {
    type: 'MEDICATION',
    score: 0.35,
    weak: 'health',
    terms: `vitamin d|vitamin d3|vitamin c|multivitamin|vitamins|supplements|iron|fluoride|fluoride toothpaste|
      lithium|oxygen|botox|allegra|melatonin|sensodyne|vaccine|vaccines|vaccination|vaccinations|vaccinated|
      immunization|immunizations|booster|flu shot|covid vaccine|covid shot|shot|shots|injection|injections|pill|
      pills|ointment|infusion|sedative|anesthetic|numbing|steroid|hormones|estrogen|progesterone|testosterone|
      medication|medications|medicine|meds|dose|dosage|refill|refills|prescribed|painkiller|antibiotic cream`,
  },

  // ── Procedures, imaging and dental treatment ──────────────────────────────────────────────────────────────
  {
    type: 'PROCEDURE',
    score: 0.75,
    terms: `root canal|root canal therapy|root canal treatment|endodontic treatment|endodontic therapy|retreatment|
      pulpotomy|pulpectomy|apicoectomy|tooth extraction|surgical extraction|simple extraction|wisdom teeth removal|
      wisdom tooth removal|wisdom teeth extraction|wisdom tooth extraction|third molar extraction|
      scaling and root planing|srp|deep cleaning|periodontal maintenance|perio maintenance|prophylaxis|prophy|
      dental prophylaxis|dental cleaning|teeth cleaning|porcelain crown|zirconia crown|ceramic crown|gold crown|
      stainless steel crown|temporary crown|permanent crown|crown prep|crown preparation|crown lengthening|
      core buildup|core build-up|post and core|dental bridge|fixed bridge|dental implant|dental implants|
      implant placement|implant crown|implant abutment|abutment|bone graft|socket preservation|sinus lift|
      ridge augmentation|denture|dentures|partial denture|complete denture|full denture|immediate denture|
      denture reline|resin composite|composite filling|composite restoration|amalgam|amalgam filling|
      tooth-colored filling|inlay|onlay|veneer|veneers|dental sealants|fluoride varnish|fluoride treatment|night guard|
      occlusal guard|occlusal adjustment|orthodontic treatment|orthodontics|invisalign|clear aligners|
      palatal expander|frenectomy|gingivectomy|gum graft|gingival graft|connective tissue graft|osseous surgery|
      periodontal surgery|flap surgery|oral surgery|biopsy|oral biopsy|incision and drainage|pulp cap|
      full-mouth x-rays|full mouth x-rays|full-mouth series|fmx|bitewing|bitewings|bitewing x-rays|panoramic x-ray|
      panoramic|panorex|periapical x-ray|periapical|cbct|cone beam|radiograph|radiographs|iv sedation|
      oral sedation|general anesthesia|local anesthesia|surgical guide|space maintainer|stainless steel crowns|
      knee replacement|hip replacement|joint replacement|bypass surgery|heart surgery|open-heart surgery|cabg|
      angioplasty|stent|stent placement|pacemaker|defibrillator|cardiac catheterization|colonoscopy|endoscopy|
      upper endoscopy|egd|sigmoidoscopy|mammogram|mammography|pap smear|pap test|pelvic exam|prostate exam|
      mri|ct scan|cat scan|pet scan|ultrasound|sonogram|echocardiogram|ekg|ecg|electrocardiogram|eeg|stress test|
      holter monitor|sleep study|polysomnography|chest x-ray|dexa scan|bone density scan|bone density test|dialysis|
      hemodialysis|peritoneal dialysis|chemotherapy|chemo|radiation therapy|radiation treatment|radiotherapy|
      immunotherapy|physical therapy|occupational therapy|speech therapy|psychotherapy|cognitive behavioral therapy|
      blood transfusion|transfusion|transplant|organ transplant|kidney transplant|liver transplant|
      bone marrow transplant|amputation|appendectomy|cholecystectomy|gallbladder removal|hysterectomy|mastectomy|
      lumpectomy|tonsillectomy|adenoidectomy|vasectomy|tubal ligation|c-section|cesarean|cesarean section|vbac|
      epidural|amniocentesis|prenatal visit|prenatal care|prenatal screening|nuchal translucency|anatomy scan|
      glucose tolerance test|abortion|d&c|iud insertion|iud|ivf|in vitro fertilization|embryo transfer|
      egg retrieval|cortisone shot|cortisone injection|steroid injection|epidural steroid injection|nerve block|
      spinal tap|lumbar puncture|urinalysis|urine test|urine culture|throat culture|strep test|rapid strep test|
      covid test|pcr test|genetic testing|pathology report|biopsy results|lab results|blood test|blood tests|
      blood work|bloodwork|blood draw|lab work|labwork|hospitalization|hospitalized|inpatient|icu|intensive care|
      nicu|emergency surgery|outpatient surgery|same-day surgery|
      post-op|postop|post-operative|postoperative|pre-op|preop|pre-operative|preoperative|
      hospice|palliative care|wound care|suture removal|stitches|physical exam|
      annual physical|well-woman exam|well-child visit|immunization record|vaccination record|tb test|ppd test|
      hearing test|vision test|eye exam|dilated eye exam|allergy testing|allergy shots|skin test|
      counseling session|therapy session|psychiatric evaluation|mental health evaluation|neuropsych evaluation|
      cognitive testing|tox screen|toxicology screen|sti testing|std testing|hiv test|pregnancy ultrasound|
      pregnancy test|x-ray|x-rays|xray|xrays|anesthesia|sedation`,
  },
  // Dental and everyday words that need a dental cue ("#14", "tooth", "molar") or another health term near.
  {
    type: 'PROCEDURE',
    score: 0.35,
    weak: 'dental',
    terms: `crown|crowns|cleaning|cleanings|filling|fillings|bridge|bridges|implant|implants|extraction|extractions|
      sealant|sealants|buildup|build-up|restoration|restorations|braces|aligners|retainer|mouthguard|partial|
      partials|scaling|whitening|bleaching|recare|exam|checkup|check-up|screening|imaging|perio|endo|ortho|
      prosthesis|intraoral photos|surgery|surgeries|surgical|operation|rehab|rehabilitation|detox|cast|splint|
      therapy|follow-up visit|physical|procedure`,
  },

  // ── Lab tests (with a value they are LAB_RESULT; alone a PROCEDURE at the group's score) ───────────────────────
  {
    type: 'LAB',
    score: 0.55,
    value: 'number',
    terms: `a1c|hba1c|hemoglobin a1c|glycated hemoglobin|ldl|hdl|ldl cholesterol|hdl cholesterol|total cholesterol|
      triglycerides|tsh|free t4|inr|pt/inr|psa|egfr|gfr|creatinine|alkaline phosphatase|bilirubin|hematocrit|wbc|
      white blood cell count|rbc|platelet count|fasting glucose|blood glucose|fasting blood sugar|vitamin d level|
      vitamin b12 level|b12 level|ferritin|crp|c-reactive protein|sed rate|troponin|bnp|d-dimer|hcg|beta hcg|
      quantitative hcg|viral load|cd4|cd4 count|o2 sat|o2 saturation|spo2|oxygen saturation|microalbumin|
      urine protein|uric acid|lipase|ca-125|cea|afp|pocket depths|probing depths|pocket depth|probing depth|
      fetal heart rate|apgar|lipid panel|metabolic panel|cbc|complete blood count|thyroid panel`,
  },
  {
    type: 'LAB',
    score: 0.35,
    value: 'number',
    terms: `glucose|blood sugar|cholesterol|sodium|potassium|calcium|magnesium|hemoglobin|hgb|hct|platelets|albumin|
      bun|alt|ast|esr|bmi|body mass index|heart rate|resting heart rate|pulse|temperature|oxygen level|
      respiratory rate|ammonia|lactate|gestational age|iron level|vitamin d`,
  },
  { type: 'LAB', score: 0.35, value: 'pressure', terms: 'bp|blood pressure' },

  // ── Clinical phrases: say something about someone's health ───────────────────────────────────────────────
  {
    type: 'HEALTH_PHRASE',
    score: 0.8,
    terms: `diagnosed with|was diagnosed|been diagnosed|newly diagnosed|dx of|dx'd with|tested positive|tested negative|
      tested positive for|tested negative for|test came back positive|test came back negative|presenting with|
      presents with|complains of|chief complaint|weeks pregnant|months pregnant|pregnant with|expecting a baby|
      gave birth|delivered a baby|allergic to|allergy to|allergies to|no known allergies|no known drug allergies|nkda|
      being treated for|under treatment for|in treatment for|medications for|taking medication|on medication for|
      prescribed for|was prescribed|been prescribed|admitted to the hospital|admitted to hospital|was hospitalized|
      discharged from the hospital|released from the hospital|in the emergency room|went to the er|
      was seen in the er|past medical history|medical history of|family history of|hx of|in remission|
      biopsy came back|scan showed|x-ray showed|x-rays show|x-rays showed|mri showed|shows a healthy pregnancy|
      scheduled for surgery|having surgery|had surgery|post-op visit|post-op check|needs a root canal|
      needs an extraction|needs a crown|needs fillings|adverse reaction to`,
  },
  {
    type: 'HEALTH_PHRASE',
    score: 0.6,
    terms: `came back positive|came back negative|treated for|medication for|prescription for|was admitted|
      suffers from|tests showed|labs showed|currently taking|diagnosis of|complaining of|presented with`,
  },
  {
    type: 'HEALTH_PHRASE',
    score: 0.35,
    weak: 'health',
    terms: `history of|suffering from|recovering from|relapsed|side effects|symptoms of|treatment for|follow-up for|
      follow up for|followup for|results came back|results are back|stopped taking|started taking|reaction to|
      side effects of`,
  },

  // ── Care context: the message is about care (not a health fact by itself) ─────────────────────────────────
  {
    type: 'CARE_CONTEXT',
    score: 0.65,
    terms: `patient|patients|pt|pts|appointment|appointments|appt|appts|office visit|visit|visits|new patient|
      established patient|chart|charts|chart note|chart notes|clinical note|clinical notes|progress note|
      progress notes|visit note|visit notes|encounter|clinic|clinical|dental|dentistry|medical|healthcare|
      health care|treatment plan|treatment plans|tx plan|tx|treatment|checkup|check-up|exam|billing|balance|
      balance due|outstanding balance|copay|co-pay|copays|coinsurance|deductible|insurance|insurer|insurance claim|
      health plan|dental plan|dental insurance|medical insurance|medicaid|medicare|claim|claims|eob|
      explanation of benefits|pre-authorization|preauthorization|prior authorization|pre-auth|preauth|
      pre-determination|predetermination|referral|referrals|referring|referred|prescription|prescriptions|rx|
      pharmacy|pharmacist|lab|labs|lab order|medical records|dental records|health records|health record|
      ehr|emr|intake form|intake forms|consent form|consent forms|hospital|emergency room|urgent care|
      follow-up|follow up|followup|recall appointment|no-show|date of service|subscriber|
      policyholder|guarantor|payer|superbill|ledger|out-of-pocket|financial responsibility|prognosis|diagnosis|dx|
      symptoms|medication|medications|procedure|procedures|surgery|admission|discharge|consult|consultation|
      telehealth|televisit|provider|providers|specialist|periodontist|endodontist|oral surgeon|orthodontist|
      cardiologist|oncologist|radiologist|dermatologist|pediatrician|obgyn|ob/gyn|psychiatrist|psychologist|
      therapist|counselor|radiology|radiology requisition|lab requisition|requisition form`,
  },
];

/** Condition words that become generic when followed by these ("covid-era policy", "cancer awareness month"). */
export const GENERIC_AFTER: readonly string[] = `era|policy|policies|protocol|protocols|precautions|guidelines|guidance|
  restrictions|rules|pandemic|awareness|month|day|research|researchers|foundation|society|association|institute|
  fundraiser|walk|run|drive|relief|closure|closures|safety|signage|update|updates|training|webinar|seminar|
  newsletter|campaign|prevention|statistics|rates|season|outbreak|response|task|mandate|mandates|insurance|
  coverage|benefits|center|centers|program|programs|study|studies|trial|trials|survivors|charity|ribbon|support|
  leave|supplies|kit|kits|protection|procedures`.split('|').map((w) => w.trim());

/** Dental words that support a weak dental term near it ("crown on #14", "cleaning for her teeth"). */
export const DENTAL_CUES: readonly string[] = `tooth|teeth|molar|molars|premolar|premolars|bicuspid|bicuspids|incisor|incisors|
  cuspid|canine tooth|wisdom|gum|gums|gingiva|gingival|enamel|dentin|pulp|root|roots|occlusal|mesial|distal|buccal|
  lingual|palatal|quadrant|quadrants|upper left|upper right|lower left|lower right|maxillary|mandibular|
  porcelain|zirconia|composite|amalgam|resin|abutment|periodontal|perio|endo|cdt|prophy|caries|decay|cavity|
  cavities|dentures|denture|jaw|bite|occlusion|anesthetic|numbing|lidocaine|novocaine|septocaine|articaine`.split('|').map((w) => w.trim());

/** Every single word of the vocabulary above, for the name recognizer: these are never names. */
export function vocabularyWords(): string[] {
  const out = new Set<string>();
  for (const g of TERM_GROUPS) {
    for (const term of g.terms.split('|')) {
      for (const w of term.trim().toLowerCase().split(/[^a-z0-9]+/)) if (w.length > 2) out.add(w);
    }
  }
  return [...out];
}
