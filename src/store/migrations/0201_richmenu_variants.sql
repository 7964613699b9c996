-- Variants of a mode's menus (issue 12 item 11): disaster mode shows `emergency-snow` (variant `snow`, with
-- 除雪車マップ) when snow is the emergency. '' is the mode's own menu set.
ALTER TABLE line_richmenus ADD COLUMN variant TEXT NOT NULL DEFAULT '';
ALTER TABLE line_richmenu_state ADD COLUMN variant TEXT NOT NULL DEFAULT '';
