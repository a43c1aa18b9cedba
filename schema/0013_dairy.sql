-- Dairy (乳制品) as a category, with its nodes: the pasture (牧场), the raw-milk collection station
-- (生鲜乳收购站, 收奶站) and the dairy plant (乳品厂). See docs/supply-chain.md. The list keeps the
-- testing laboratory the custody work names, so whichever lands second keeps both.

ALTER TABLE nodes DROP CONSTRAINT nodes_node_type_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_node_type_check CHECK (node_type IN (
    'farm', 'slaughterhouse', 'processor', 'wholesale_market', 'wholesaler',
    'wet_market', 'supermarket', 'canteen', 'drug_manufacturer',
    'drug_distributor', 'pharmacy', 'hospital', 'testing_lab',
    'pasture', 'milk_station', 'dairy_plant'));

ALTER TABLE products DROP CONSTRAINT products_category_check;
ALTER TABLE products ADD CONSTRAINT products_category_check
    CHECK (category IN ('meat', 'vegetable', 'dairy', 'drug', 'other'));
